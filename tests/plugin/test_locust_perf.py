"""perf.measure(engine="locust") through a whole pytest session: measured by Locust workers, then
baselined and judged like any other measurement (#17)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.plugin.conftest import FAST_ARGS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None,
    reason="Locust is not installed: pip install 'pytest-tfserving[locust]'",
)

PERF_TEST = """
import pytest

@pytest.mark.perf
def test_latency(tfserving_server, perf):
    m = perf.measure(tfserving_server, concurrency=2, engine="locust", workers=2)
    assert m.extra["locust"] == 1.0 and m.extra["workers"] == 2.0 and m.errors == 0
"""


def test_locust_measurement_is_baselined_and_judged(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_perf=PERF_TEST)
    windows = ("--perf-min-windows=4", "--perf-max-windows=4")
    perf_project.runpytest_subprocess(*FAST_ARGS, *windows, "--update-baselines").assert_outcomes(passed=1)
    assert (perf_project.path / "baselines" / "test_perf__test_latency.json").exists()

    report = perf_project.path / "report.json"
    result = perf_project.runpytest_subprocess(*FAST_ARGS, *windows, f"--perf-report-json={report}")
    result.assert_outcomes(passed=1)
    verdicts = json.loads(report.read_text())["tests"][0]["verdicts"]
    assert {v["metric"] for v in verdicts} >= {"p50_ms"}
