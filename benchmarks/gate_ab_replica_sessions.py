"""Real detection by ``--ab-baseline`` with ``--ab-replicas``: whole pytest sessions, nothing simulated.

A sibling of ``gate_aa_sessions.py``. One throwaway project records a baseline of the tiny CNN
(``--update-baselines``); then each "pull request" is one fresh ``pytest --ab-baseline`` process
whose model is a genuinely slower variant (two extra dense layers of ``U`` units: ``2u360`` is
about +5 % at p50 here, ``2u560`` about +10 %; measure them with ``gate_quality.py collect-ab``
first) or the same model with other weights (``aa``: another seed, the same computation). The
session starts ``--ab-replicas`` processes of the baseline's deployment and as many of the PR's,
measures the paired windows rotating over them and judges; a ``regression`` of the PR's test is a
detection (a false alarm for ``aa``). Sessions take the PR models in turn.

    python benchmarks/gate_ab_replica_sessions.py run --out /tmp/rep.json --sessions 30 \\
        --models 2u360 2u560 aa -- --ab-replicas 3 --perf-window 0.5 --perf-max-windows 60
    python benchmarks/gate_ab_replica_sessions.py summarize /tmp/rep.json

``run`` rewrites the JSON file after every session (``--resume`` continues one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gate_aa_sessions import clopper_pearson  # run as a script: benchmarks/ is on sys.path

CONFTEST = """
import os
import re
import pytest
from pytest_tfserving.models.tiny import build_tiny_cnn
from pytest_tfserving.serving.spec import ServerSpec

@pytest.fixture(scope="session")
def tfserving_spec(tfserving_models):
    model = os.environ["AB_MODEL"]
    if model == "base":
        built = build_tiny_cnn(seed=0)
    elif model == "aa":
        built = build_tiny_cnn(seed=1)
    else:
        layers, units = re.fullmatch(r"(\\d+)u(\\d+)", model).groups()
        built = build_tiny_cnn(seed=0, extra_dense_layers=int(layers), dense_units=int(units))
    spec = tfserving_models.build(built, name="tiny", variant="fp32")
    return ServerSpec(models=(spec,), intra_op=1, inter_op=1)
"""

TEST = """
import pytest

@pytest.mark.perf(tolerance={tolerance})
def test_latency(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)
"""


def _pytest(project: Path, model: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AB_MODEL": model, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )


def _record(report: Path, result: subprocess.CompletedProcess[str], wall_s: float) -> dict[str, Any]:
    if not report.is_file():
        return {"error": "no report", "rc": result.returncode, "tail": result.stdout[-3000:],
                "wall_s": wall_s}
    (test,) = json.loads(report.read_text())["tests"]
    verdicts = [{k: v.get(k) for k in ("metric", "verdict", "change", "detectable", "paired", "n_current",
                                        "message")} for v in test["verdicts"]]
    notes = [line for line in result.stdout.splitlines() if "server processes per side" in line
             or "one server process per side" in line]
    return {"rc": result.returncode, "outcome": test["outcome"], "error": test["error"], "verdicts": verdicts,
            "alone_s": test["measurement"]["duration_s"], "wall_s": wall_s, "notes": notes[:2]}


def run(args: argparse.Namespace) -> None:
    project = Path(args.work)
    out = Path(args.out)
    state: dict[str, Any] = {"sessions": [], "settings": vars(args)}
    if args.resume and out.is_file():
        state = json.loads(out.read_text())
    if not state["sessions"]:
        project.mkdir(parents=True, exist_ok=True)
        (project / "pytest.ini").write_text(
            f"[pytest]\ntfserving_backend = embedded\ntfserving_model_cache = {project / 'model-cache'}\n"
            "tfserving_perf = true\n"
        )
        (project / "conftest.py").write_text(CONFTEST)
        (project / "test_ab.py").write_text(TEST.format(tolerance=args.tolerance))
        recorded = _pytest(project, "base", ["--update-baselines", *args.pytest_args])
        if recorded.returncode != 0:
            sys.exit(f"recording the baseline failed:\n{recorded.stdout[-3000:]}")
    for index in range(len(state["sessions"]), args.sessions):
        model = args.models[index % len(args.models)]
        report = project / f"report-{index}.json"
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        result = _pytest(project, model, ["--ab-baseline", f"--perf-report-json={report}", *args.pytest_args])
        record = _record(report, result, time.monotonic() - started)
        record.update(index=index, model=model, load_1min=[load_before, os.getloadavg()[0]])
        state["sessions"].append(record)
        out.write_text(json.dumps(state, indent=1))
        calls = [(v["metric"], v["verdict"], v["change"]) for v in record.get("verdicts", [])]
        print(f"{index:4d} {model} rc={record['rc']} {record.get('outcome')} {calls} {record['wall_s']:.1f}s "
              f"load {record['load_1min'][0]:.1f}->{record['load_1min'][1]:.1f}",
              flush=True)


def summarize(args: argparse.Namespace) -> None:
    state = json.loads(Path(args.file).read_text())
    print(f"settings: {state['settings']}")
    window = _window_s(state["settings"].get("pytest_args", []))
    for model in state["settings"]["models"]:
        sessions = [s for s in state["sessions"] if s["model"] == model]
        judged = [s for s in sessions if "verdicts" in s and not s.get("error")]
        hits = [s for s in judged if any(v["verdict"] == "regression" for v in s["verdicts"])]
        p50_hits = [s for s in judged for v in s["verdicts"] if v["metric"] == "p50_ms"
                    and v["verdict"] == "regression"]
        low, high = clopper_pearson(len(hits), len(judged))
        changes = [v["change"] for s in judged for v in s["verdicts"] if v["metric"] == "p50_ms"
                   and v["change"] is not None]
        pairs = [v["n_current"] for s in judged for v in s["verdicts"] if v["metric"] == "p50_ms"]
        walls = [s["wall_s"] for s in judged]
        print(f"{model}: {len(sessions)} sessions, {len(judged)} judged; test regression {len(hits)} of "
              f"{len(judged)} [{low:.1%}, {high:.1%}] (p50 {len(p50_hits)})")
        if changes:
            print(f"  paired p50 change: median {statistics.median(changes):+.2%}, "
                  f"min {min(changes):+.2%}, max {max(changes):+.2%}")
        if pairs:
            print(f"  pairs: median {statistics.median(pairs)}, max {max(pairs)}; pair seconds "
                  f"(pairs x window {window:g} s): median {statistics.median(pairs) * window:.1f}, "
                  f"max {max(pairs) * window:.1f}")
        if walls:
            print(f"  whole pytest process: median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")
        loads = [max(s["load_1min"]) for s in judged if "load_1min" in s]
        if loads:
            print(f"  1-min load average around a session: median {statistics.median(loads):.2f}, "
                  f"max {max(loads):.2f}")


def _window_s(pytest_args: list[str]) -> float:
    for i, arg in enumerate(pytest_args):
        if arg.startswith("--perf-window="):
            return float(arg.split("=", 1)[1])
        if arg == "--perf-window" and i + 1 < len(pytest_args):
            return float(pytest_args[i + 1])
    return 1.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--work", default="/tmp/gate-ab-replicas")
    r.add_argument("--sessions", type=int, default=30)
    r.add_argument("--models", nargs="+", default=["2u360", "2u560"],
                   help="PR models in turn: NuU (N extra dense layers of U units) or aa "
                   "(default 2u360 2u560)")
    r.add_argument("--tolerance", type=float, default=0.001,
                   help="marker tolerance (default 0.001: the marker takes no 0, and 0.1 %% is near it)")
    r.add_argument("--resume", action="store_true")
    r.add_argument("pytest_args", nargs="*", help="passed to every pytest session (after --)")
    s = sub.add_parser("summarize")
    s.add_argument("file")
    args = parser.parse_args()
    run(args) if args.command == "run" else summarize(args)


if __name__ == "__main__":
    main()
