"""Would a reference ("anchor") workload measured interleaved with a test remove run-to-run drift?

The gate's weak spot (docs/GATE.md) is drift between sessions: whole runs on fresh servers differ by
10-40 % on a shared VM while windows of one run agree closely. This script measures how much of that
drift a normalising anchor would remove, before anyone builds one into the plugin.

Each instance starts a fresh target server (a small MobileNetV2, ``weights=None``, 96x96, about
8 ms per request here) and a fresh anchor server, and measures them in interleaved windows
(A B B A ...) with ``measure_interleaved``. Between windows it also times a fixed CPU probe in this
process (numpy matmuls plus a Python loop). Printed per instance: the target's p50, the anchor's,
the probe's, and the target normalised by each; at the end the spread (max/min) and coefficient of
variation of each column across instances. Anchors: ``tiny`` (the tiny CNN, 1 intra/inter-op
thread: cheap, Python-overhead dominated) or ``same`` (a second server with the target's model: the
best case, an anchor that costs what the target costs).

    .venv/bin/python benchmarks/drift_anchor.py --anchor tiny --instances 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.load import LoadConfig, measure_interleaved
from pytest_tfserving.models.tiny import export_tiny_model_in_child
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

_EXPORT_MOBILENET = """
import sys, keras
from pytest_tfserving.models.tiny import export_savedmodel
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.5)
export_savedmodel(model, sys.argv[1])
"""


def export_mobilenet(version_dir: Path) -> Path:
    """Export in a child process, so this load-generating process never imports TensorFlow."""
    import subprocess

    if not version_dir.exists():
        subprocess.run([sys.executable, "-c", _EXPORT_MOBILENET, str(version_dir)], check=True)
    return version_dir.parent


_MATRIX = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)


def cpu_probe_ms() -> float:
    start = time.perf_counter()
    for _ in range(40):
        _MATRIX @ _MATRIX
    total = 0
    for i in range(20_000):
        total += i * i
    return (time.perf_counter() - start) * 1000.0


def spread(values: list[float]) -> str:
    return (f"spread {max(values) / min(values):.3f}x, "
            f"CV {statistics.stdev(values) / statistics.mean(values):.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", choices=["tiny", "same"], default="tiny")
    parser.add_argument("--instances", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=12, help="interleaved window pairs per instance")
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--models", default=str(Path(tempfile.gettempdir()) / "drift-anchor-models"))
    args = parser.parse_args()
    root = Path(args.models)
    target_path = export_mobilenet(root / "mobilenet" / "1")
    if args.anchor == "same":
        anchor_spec = ServerSpec(models=(ModelSpec("anchor", target_path),))
    else:
        if not (root / "tiny" / "1").exists():
            export_tiny_model_in_child(root / "tiny" / "1")
        anchor_spec = ServerSpec(models=(ModelSpec("anchor", root / "tiny"),), intra_op=1, inter_op=1)
    target_spec = ServerSpec(models=(ModelSpec("target", target_path),))
    print(f"load average: {os.getloadavg()}  cores: {os.cpu_count()}  anchor: {args.anchor}")
    rows: list[tuple[float, float, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for instance in range(args.instances):
            target = EmbeddedBackend().start(target_spec, Path(tmp), 300)
            try:
                anchor = EmbeddedBackend().start(anchor_spec, Path(tmp), 300)
            except BaseException:
                target.stop()
                raise
            probes: list[float] = []
            try:
                a, b = measure_interleaved(
                    LoadConfig(target.endpoints.grpc_target, "target"),
                    LoadConfig(anchor.endpoints.grpc_target, "anchor"),
                    rounds=args.rounds,
                    warmup_s=1.0,
                    window_s=args.window,
                    progress=lambda side, _w, probes=probes: (  # type: ignore[misc]
                        probes.append(cpu_probe_ms()) if side == "a" else None
                    ),
                )
            finally:
                target.stop()
                anchor.stop()
            tv = [w.p50_ms for w in a.windows]
            av = [w.p50_ms for w in b.windows]
            med = statistics.median
            row = (med(tv), med(av), med(probes), med([t / x for t, x in zip(tv, av, strict=True)]),
                   med([t / p for t, p in zip(tv, probes, strict=False)]))
            rows.append(row)
            print(f"instance {instance}: target p50 {row[0]:.2f} ms, anchor {row[1]:.3f} ms, probe "
                  f"{row[2]:.2f} ms | target/anchor {row[3]:.3f}, target/probe {row[4]:.3f}", flush=True)
    for index, name in enumerate(["target", "anchor", "probe", "target/anchor", "target/probe"]):
        print(f"{name:>14}: {spread([row[index] for row in rows])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
