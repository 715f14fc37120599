"""pytest-xdist as users run it (``-n 2``): perf tests on different workers never measure at the same
time (an flock at ``<model cache>/perf.lock`` spans each perf test's call phase), and the controller's
report covers every worker's perf tests."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.plugin.conftest import FAST_ARGS

STAMP = '''
import fcntl
import json
import os
import time
from pathlib import Path


def stamp(name, lock_path, work=lambda: time.sleep(1.0)):
    """Record when this call phase ran, and prove the perf lock is held meanwhile."""
    start = time.time()
    # A second open file description conflicts with the holder's exclusive lock. The probe asks for
    # a shared lock: two probes at the same instant (plain tests on two workers) never see each other.
    with open(lock_path, "a+") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
            fcntl.flock(other, fcntl.LOCK_UN)
        except BlockingIOError:
            held = True
    work()
    end = time.time()
    out = Path(__file__).parent / "stamps"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(
        {"start": start, "end": end, "held": held, "worker": os.environ.get("PYTEST_XDIST_WORKER")}))
'''

LOCKED_TESTS = (
    STAMP
    + """
import pytest


@pytest.fixture
def lock_path(tfserving_settings):
    return tfserving_settings.tfserving_model_cache / "perf.lock"


@pytest.mark.perf
def test_perf_one(lock_path):
    stamp("perf_one", lock_path)


@pytest.mark.perf
def test_perf_two(lock_path):
    stamp("perf_two", lock_path)
"""
)


def stamps(project: pytest.Pytester) -> dict[str, dict[str, object]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((project.path / "stamps").glob("*.json"))}


def assert_serial(found: dict[str, dict[str, object]]) -> None:
    intervals = sorted((float(str(s["start"])), float(str(s["end"])), name) for name, s in found.items())
    for (_, end, first), (start, _, second) in itertools.pairwise(intervals):
        assert end <= start, f"{first} and {second} measured at the same time: {found}"


def test_perf_tests_on_two_workers_take_turns(perf_project: pytest.Pytester) -> None:
    perf_project.makepyfile(test_locked=LOCKED_TESTS)
    result = perf_project.runpytest_subprocess(*FAST_ARGS, "-n", "2", "-m", "perf")
    # Perf tests that never touch the `perf` fixture still run and pass.
    result.assert_outcomes(passed=2)
    found = stamps(perf_project)
    assert set(found) == {"perf_one", "perf_two"}
    assert {s["worker"] for s in found.values()} == {"gw0", "gw1"}, f"not spread over both workers: {found}"
    assert all(s["held"] for s in found.values()), f"perf.lock was free during a perf call: {found}"
    assert_serial(found)


def test_plain_tests_are_not_serialized(perf_project: pytest.Pytester) -> None:
    """The control: without the marker the lock is free, so the check above can tell the difference."""
    perf_project.makepyfile(test_plain=LOCKED_TESTS.replace("@pytest.mark.perf\n", ""))
    result = perf_project.runpytest_subprocess(*FAST_ARGS, "-n", "2")
    result.assert_outcomes(passed=2)
    found = stamps(perf_project)
    assert {s["worker"] for s in found.values()} == {"gw0", "gw1"}, found
    assert not any(s["held"] for s in found.values()), found


MEASURED_AND_UNMEASURED = (
    STAMP
    + """
import pytest


@pytest.mark.perf
def test_measured(tfserving_server, tfserving_settings, perf):
    stamp("measured", tfserving_settings.tfserving_model_cache / "perf.lock",
          lambda: perf.measure(tfserving_server, min_windows=4, max_windows=4))


@pytest.mark.perf
def test_unmeasured(tfserving_settings):
    stamp("unmeasured", tfserving_settings.tfserving_model_cache / "perf.lock")
"""
)


def test_controller_reports_every_workers_perf_tests(perf_project: pytest.Pytester, tmp_path: Path) -> None:
    perf_project.makepyfile(test_both=MEASURED_AND_UNMEASURED)
    report = tmp_path / "perf.json"
    result = perf_project.runpytest_subprocess(*FAST_ARGS, "-n", "2", f"--perf-report-json={report}")
    result.assert_outcomes(passed=2)
    found = stamps(perf_project)
    assert {s["worker"] for s in found.values()} == {"gw0", "gw1"}, found
    assert_serial(found)
    result.stdout.fnmatch_lines(["*tfserving performance*"])
    result.stdout.fnmatch_lines_random(["*_measured  new (no baseline)*", "*_unmeasured*"])
    nodeids = {t["nodeid"] for t in json.loads(report.read_text())["tests"]}
    assert "test_both.py::test_measured" in nodeids
