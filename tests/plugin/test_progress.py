"""Live progress while a perf test measures (#19): pytest's terminal shows the phase and each window
as it happens, past output capture; -q keeps it quiet."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import FAST_ARGS

PERF_TEST = """
import pytest

@pytest.mark.perf
def test_latency(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)
"""


def test_progress_lines_show_the_phase_and_the_windows(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_perf=PERF_TEST)
    # No TTY: plain lines, as in a CI log (a window line at most every 5 s, and the last one).
    windows = ("--perf-min-windows=12", "--perf-max-windows=12")
    result = perf_project.runpytest_subprocess(*FAST_ARGS, *windows)
    result.assert_outcomes(passed=1)
    text = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*test_perf.py::test_latency ?* s? measure: warm-up 0.5 s, then 12 to 12 windows of 0.5 s",
        "*test_perf.py::test_latency ?* s? measure: window 12/<=12  p50 * ms  * req/s",
        "*test_perf.py::test_latency ?* s? measure: 12 windows, p50 * ms, * req/s; no baseline",
    ])
    # Not swallowed by capture, and before the summary: written while the test ran.
    assert text.index("measure: warm-up") < text.index("tfserving performance")

    quiet = perf_project.runpytest_subprocess(*FAST_ARGS, *windows, "-q")
    quiet.assert_outcomes(passed=1)
    assert "measure: warm-up" not in quiet.stdout.str()
