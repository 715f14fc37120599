"""The real per-PR false-alarm rate of ``--ab-baseline``: whole pytest sessions, nothing simulated.

Each A/A "pull request" is one fresh ``pytest --ab-baseline`` process in a throwaway project, run
through the installed plugin exactly as a user runs it (defaults for windows, looks, alpha and
tolerance unless given): it starts two fresh embedded servers, the baseline's recorded deployment
and the PR's, drives paired load and judges every gated metric. The PR's model is the baseline's
model with other random weights (another seed): a different model identity, so the gate really
serves both side by side, and the same computation, so it is no slower. Any ``regression`` is a
false alarm of the whole PR. Two projects swap the seeds (baseline seed 0 / PR seed 1, and the
reverse), alternating session by session, so a speed difference between the two weight sets would
show up as opposite effects instead of hiding in the rate.

    python benchmarks/gate_aa_sessions.py run --out /tmp/aa.json --sessions 150
    python benchmarks/gate_aa_sessions.py summarize /tmp/aa.json

``run`` rewrites the JSON file after every session, so a cut-short run still counts; ``--resume``
continues one. ``summarize`` prints false-alarm PRs with a 95 % Clopper-Pearson interval, the
verdict counts, the effects' spread, the detectable changes and the seconds per session. Run it on a
quiet machine: anything else on the cores is noise the gate was not calibrated for (say so if not).
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

from scipy.stats import beta

CONFTEST = """
import os
import pytest
from pytest_tfserving.models.tiny import build_tiny_cnn
from pytest_tfserving.serving.spec import ServerSpec

@pytest.fixture(scope="session")
def tfserving_spec(tfserving_models):
    seed = int(os.environ["AA_SEED"])
    spec = tfserving_models.build(build_tiny_cnn(seed=seed), name="tiny", variant="fp32")
    return ServerSpec(models=(spec,), intra_op=1, inter_op=1)
"""

TEST = """
import pytest

@pytest.mark.perf({marker})
def test_latency(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency={concurrency})
"""


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for a binomial rate: k events in n trials."""
    tail = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def upper_bound(k: int, n: int, level: float = 0.95) -> float:
    """Exact one-sided upper bound for a binomial rate (0 of n: 1 - (1 - level) ** (1 / n))."""
    return 1.0 if k == n else float(beta.ppf(level, k + 1, n - k))


def _make_project(root: Path, cache: Path, marker: str, concurrency: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text(
        f"[pytest]\ntfserving_backend = embedded\ntfserving_model_cache = {cache}\ntfserving_perf = true\n"
    )
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_aa.py").write_text(TEST.format(marker=marker, concurrency=concurrency))


def _pytest(project: Path, seed: int, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AA_SEED": str(seed), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )


def _session_record(
    report: Path, result: subprocess.CompletedProcess[str], wall_s: float
) -> dict[str, Any]:
    if not report.is_file():
        return {"error": "no report", "rc": result.returncode, "tail": result.stdout[-2000:],
                "wall_s": wall_s}
    data = json.loads(report.read_text())
    (test,) = data["tests"]
    verdicts = [
        {key: v.get(key) for key in ("metric", "verdict", "change", "ci_low", "ci_high", "detectable",
                                     "paired", "n_current", "tolerance", "fails", "message")}
        for v in test["verdicts"]
    ]
    return {"rc": result.returncode, "outcome": test["outcome"], "error": test["error"],
            "verdicts": verdicts, "wall_s": wall_s}


def run(args: argparse.Namespace) -> None:
    work = Path(args.work)
    cache = work / "model-cache"
    marker = f"tolerance={args.tolerance}" if args.tolerance is not None else ""
    projects = [(work / "proj_a", 0, 1), (work / "proj_b", 1, 0)]  # (project, baseline seed, PR seed)
    out = Path(args.out)
    state: dict[str, Any] = {"sessions": [], "settings": vars(args)}
    if args.resume and out.is_file():
        state = json.loads(out.read_text())
    if not state["sessions"]:
        for project, baseline_seed, _ in projects:
            _make_project(project, cache, marker, args.concurrency)
            recorded = _pytest(project, baseline_seed, ["--update-baselines", *args.pytest_args])
            if recorded.returncode != 0:
                sys.exit(f"recording the baseline in {project} failed:\n{recorded.stdout[-3000:]}")
    for index in range(len(state["sessions"]), args.sessions):
        project, baseline_seed, pr_seed = projects[index % 2]
        report = project / f"report-{index}.json"
        started = time.monotonic()
        result = _pytest(project, pr_seed, ["--ab-baseline", f"--perf-report-json={report}",
                                            *args.pytest_args])
        record = _session_record(report, result, time.monotonic() - started)
        record.update(index=index, project=project.name, baseline_seed=baseline_seed, pr_seed=pr_seed)
        state["sessions"].append(record)
        out.write_text(json.dumps(state, indent=1))
        calls = [v["verdict"] for v in record.get("verdicts", [])]
        print(f"{index:4d} {project.name} rc={record['rc']} {record.get('outcome')} {calls} "
              f"{record['wall_s']:.1f}s", flush=True)


def summarize(args: argparse.Namespace) -> None:
    state = json.loads(Path(args.file).read_text())
    sessions = state["sessions"]
    errors = [s for s in sessions if s.get("error") or "verdicts" not in s]
    judged = [s for s in sessions if s not in errors]
    alarms = [s for s in judged if any(v["verdict"] == "regression" for v in s["verdicts"])]
    n, k = len(judged), len(alarms)
    low, high = clopper_pearson(k, n)
    print(f"settings: {state['settings']}")
    print(f"sessions: {len(sessions)} run, {len(errors)} errors, {n} judged")
    print(f"false-alarm PRs: {k} of {n} = {k / max(n, 1):.2%}, 95 % CI [{low:.2%}, {high:.2%}], "
          f"one-sided 95 % upper bound {upper_bound(k, n):.2%}")
    counts: dict[tuple[str, str], int] = {}
    for session in judged:
        for v in session["verdicts"]:
            counts[(v["metric"], v["verdict"])] = counts.get((v["metric"], v["verdict"]), 0) + 1
    for (metric, verdict), count in sorted(counts.items()):
        print(f"  {metric:8s} {verdict:13s} {count}")
    for metric in sorted({v["metric"] for s in judged for v in s["verdicts"]}):
        for project in ("proj_a", "proj_b"):
            changes = [v["change"] for s in judged if s["project"] == project
                       for v in s["verdicts"] if v["metric"] == metric and v["change"] is not None]
            if len(changes) > 1:
                print(f"  {metric:8s} {project}: change mean {statistics.mean(changes):+.2%}, "
                      f"sd {statistics.stdev(changes):.2%}, "
                      f"min {min(changes):+.2%}, max {max(changes):+.2%}")
        found = sorted(v["detectable"] for s in judged for v in s["verdicts"]
                       if v["metric"] == metric and v["detectable"] is not None)
        if found:
            print(f"  {metric:8s} detectable: median {statistics.median(found):.1%}, "
                  f"max {found[-1]:.1%}")
    walls = [s["wall_s"] for s in sessions]
    if walls:
        print(f"seconds per PR session (whole pytest process): median {statistics.median(walls):.1f}, "
              f"max {max(walls):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--work", default="/tmp/gate-aa")
    run_parser.add_argument("--sessions", type=int, default=150)
    run_parser.add_argument("--concurrency", type=int, default=1)
    run_parser.add_argument("--tolerance", type=float, default=None,
                            help="marker tolerance (default: the plugin's)")
    run_parser.add_argument("--resume", action="store_true")
    run_parser.add_argument("pytest_args", nargs="*", help="passed to every pytest session (after --)")
    sum_parser = sub.add_parser("summarize")
    sum_parser.add_argument("file")
    args = parser.parse_args()
    run(args) if args.command == "run" else summarize(args)


if __name__ == "__main__":
    main()
