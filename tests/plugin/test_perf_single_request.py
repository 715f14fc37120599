"""perf.single_request as users meet it: pytest-benchmark times the requests, the gate judges them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.conftest import FAST_ARGS

SINGLE_TEST = """
import pytest

@pytest.mark.perf(max_error_rate=0, tolerance=0.5)
def test_single(tfserving_server, perf, benchmark):
    m = perf.single_request(tfserving_server, benchmark, rounds=60, warmup_rounds=5)
    assert m.count == 60
"""


def test_single_request_is_baselined_judged_and_reported(
    perf_project: pytest.Pytester, tmp_path: Path
) -> None:
    perf_project.makepyfile(test_single=SINGLE_TEST)
    result = perf_project.runpytest(*FAST_ARGS, "--update-baselines")
    result.assert_outcomes(passed=1)
    baseline = json.loads((perf_project.path / "baselines" / "test_single__test_single.json").read_text())
    assert baseline["measurement"]["extra"]["benchmark_rounds"] == 60
    assert len(baseline["measurement"]["windows"]) == 6  # --perf-min-windows
    # What it ran with, compared under --baseline-ref: fewer rounds or windows loosen its gate.
    assert baseline["gate_settings"]["windows"] == {"max_windows": 6.0, "min_windows": 6.0, "rounds": 60.0}
    # pytest-benchmark's own table is printed as usual beside ours.
    result.stdout.fnmatch_lines(["*tfserving performance*", "*benchmark: 1 tests*", "test_single *60*"])

    report = tmp_path / "perf.json"
    result = perf_project.runpytest(*FAST_ARGS, f"--perf-report-json={report}")
    result.assert_outcomes(passed=1)
    [record] = json.loads(report.read_text())["tests"]
    m = record["measurement"]
    assert m["p50_ms"] > 0 and m["extra"]["single_request"] == 1.0 and m["server_p50_ms"] is not None
    assert {v["metric"]: v["verdict"] for v in record["verdicts"]}.keys() >= {"p50_ms", "rps"}


def test_disabled_benchmark_is_a_clear_error(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_single=SINGLE_TEST)
    result = perf_project.runpytest(*FAST_ARGS, "--benchmark-disable")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest-benchmark did not time the requests*--benchmark-disable*"])
