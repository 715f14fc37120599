"""Peak memory of the load generator during a long open-loop run (goal: < 200 MB for 10 minutes).

Runs an open loop at ``--rate`` (default 1,000 req/s, gRPC) against the embedded server with the tiny
model for ``--minutes``, sampling this process's RSS once per window. Prints peak RSS, the RSS after the
first minute and at the end, and the growth per minute extrapolated to 10 minutes. The model is exported
in a child process so this process never imports TensorFlow.

    .venv/bin/python benchmarks/client_memory.py [--minutes 2] [--rate 1000] [--protocol grpc]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import psutil

from pytest_tfserving.embedded.launch import embedded_command, start_server
from pytest_tfserving.load import LoadConfig, StabilityRule, measure
from pytest_tfserving.load.results import WindowSummary
from pytest_tfserving.models.tiny import export_tiny_model_in_child


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--protocol", choices=["grpc", "rest"], default="grpc")
    parser.add_argument(
        "--batching",
        action="store_true",
        help="serve with --enable_batching (max batch 32, 1 ms timeout) so the server can keep up",
    )
    args = parser.parse_args()
    me = psutil.Process()
    print(f"load average: {os.getloadavg()}  cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "m"
        export_tiny_model_in_child(models / "1")
        flags = ["--port=0", "--rest_api_port=0", "--model_name=tiny", f"--model_base_path={models}"]
        if args.batching:
            params = Path(tmp) / "batching.config"
            params.write_text(
                "max_batch_size { value: 128 }\nbatch_timeout_micros { value: 2000 }\n"
                "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 1000 }\n"
            )
            flags += ["--enable_batching=true", f"--batching_parameters_file={params}"]
        server = start_server(embedded_command(*flags), timeout_s=300)
        rss: list[tuple[float, float]] = []

        def note(window: WindowSummary) -> None:
            rss.append((window.start_s + window.duration_s, me.memory_info().rss / 2**20))
            if len(rss) % 10 == 0:
                print(
                    f"  t={rss[-1][0]:6.0f} s  rss={rss[-1][1]:6.1f} MB  p50={window.p50_ms:.1f} ms  "
                    f"done={window.rps:.0f}/s  errors={window.errors}",
                    flush=True,
                )

        before = me.memory_info().rss / 2**20
        try:
            windows = max(1, round(args.minutes * 60 / 2.0))
            target = server.grpc_target if args.protocol == "grpc" else server.rest_url
            m = measure(
                LoadConfig(target, "tiny", protocol=args.protocol, mode="open", rate=args.rate),
                warmup_s=2.0,
                window_s=2.0,
                rule=StabilityRule(min_windows=windows, max_windows=windows),
                progress=note,
            )
        finally:
            server.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    after_1min = next((r for t, r in rss if t >= 60), rss[0][1])
    t_end, r_end = rss[-1]
    t_1 = next((t for t, _ in rss if t >= 60), rss[0][0])
    slope = (r_end - after_1min) / max((t_end - t_1) / 60, 1e-9)
    print(
        f"requests sent {m.extra['sent_rps'] * m.duration_s:.0f} at {m.extra['sent_rps']:.0f}/s "
        f"(target {args.rate:.0f}), completed {m.rps:.0f}/s, errors {m.errors} {m.errors_by_status}, "
        f"saturated={m.client_saturated}"
    )
    print(
        f"RSS before load {before:.1f} MB, after ~1 min {after_1min:.1f} MB, end {r_end:.1f} MB, "
        f"peak (ru_maxrss) {peak:.1f} MB"
    )
    print(
        f"growth after the first minute: {slope:+.2f} MB/min -> extrapolated 10-min peak "
        f"{max(peak, r_end + slope * max(0.0, 10 - t_end / 60)):.1f} MB (goal < 200 MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
