"""The run-to-run drift pooled over every baseline on this runner (``gate.run_drift``), as a session
uses it: recorded by --update-baselines, histories set to 5 runs, then judged. Real embedded server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.conftest import FAST_ARGS

# Tolerance 0.1 %: any change is beyond it, so every verdict names the drift it was weighed against
# (and none can be a regression here: the drift allowed is far wider than a fresh server's).
TWO_TESTS = """
import pytest


@pytest.mark.perf(max_error_rate=0, tolerance=0.001)
def test_steady(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)


@pytest.mark.perf(max_error_rate=0, tolerance=0.001)
def test_drifting(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)
"""


def set_history(path: Path, factors: tuple[float, ...]) -> None:
    """Give the baseline ``len(factors)`` recorded runs: its one run scaled by each factor."""
    data = json.loads(path.read_text())
    (run,) = data["runs"]
    data["runs"] = [
        {"created": f"2026-12-0{i + 1}T10:00:00+00:00",
         "values": {k: v * f for k, v in run["values"].items()}}
        for i, f in enumerate(factors)
    ]
    path.write_text(json.dumps(data, indent=1) + "\n")


def p50_message(project: pytest.Pytester, report: Path, nodeid_end: str) -> str:
    tests = json.loads(report.read_text())["tests"]
    test = next(t for t in tests if t["nodeid"].endswith(nodeid_end))
    return str(next(v for v in test["verdicts"] if v["metric"] == "p50_ms")["message"])


def test_each_baseline_is_judged_on_the_drift_pooled_over_the_runner(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_pool=TWO_TESTS)
    perf_project.runpytest(*FAST_ARGS, "--update-baselines").assert_outcomes(passed=2)
    baselines = perf_project.path / "baselines"
    steady, drifting = baselines / "test_pool__test_steady.json", baselines / "test_pool__test_drifting.json"
    set_history(steady, (1.0, 1.0, 1.0, 1.0, 1.0))  # five runs that agree: 4 degrees of freedom alone
    set_history(drifting, (0.7, 1.0, 1.4, 0.8, 1.2))
    report = perf_project.path / "report.json"

    # Not asserted pass: at tolerance 0.1 % a swing of this VM between the two sessions is a regression.
    perf_project.runpytest(*FAST_ARGS, f"--perf-report-json={report}")
    pooled = p50_message(perf_project, report, "test_steady")
    # The steady test's own runs say nothing about the drift; the runner's histories together do.
    assert "the run-to-run drift pooled over 2 baseline histories on this runner (8 degrees of " \
           "freedom)" in pooled, pooled
    assert "geometric mean of 5 recorded runs" in pooled

    drifting.unlink()  # alone, its five agreeing runs count for what they are: 4 degrees of freedom
    perf_project.runpytest(*FAST_ARGS, f"--perf-report-json={report}")
    alone = p50_message(perf_project, report, "test_steady")
    assert "a run-to-run drift of 6% (--perf-run-drift), on the 4 degrees of freedom of the spread " \
           "of 5 recorded runs" in alone, alone
    assert "pooled" not in alone
