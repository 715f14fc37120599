"""ProcessSampler on real processes: a busy loop, a memory hog, and a parent whose child does the work.

The machine is shared (a busy loop may get only a fraction of a core), so readings are checked against
the CPU seconds the busy process itself used over the same interval, not against a fixed 100%.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from pytest_tfserving.metrics.errors import SamplingError
from pytest_tfserving.metrics.process import ProcessSampler

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
HOG = "import sys, time\nblock = b'x' * (160 * 1024 * 1024)\nprint('ready', flush=True)\ntime.sleep(30)\n"
# An idle parent that starts a busy child (after ``delay`` seconds) and waits for it.
PARENT = (
    "import subprocess, sys, time\n"
    "time.sleep(float(sys.argv[1]))\n"
    f"child = subprocess.Popen([sys.executable, '-c', {BUSY!r}])\n"
    "print('started', flush=True)\n"
    "child.wait()\n"
)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        for child in tree:
            child.kill()
        proc.kill()
        proc.wait(timeout=10)


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def assert_matches_own_usage(reading: float, worker: int, cpu_before: float, wall_before: float) -> None:
    """``reading`` must be the worker's own CPU use over the interval (100 = one core), and nonzero."""
    expected = 100.0 * (_cpu_seconds(worker) - cpu_before) / (time.monotonic() - wall_before)
    assert reading > 3.0, f"a busy loop read as {reading:.1f}% (it used {expected:.1f}%)"
    assert abs(reading - expected) < 5.0 + 0.25 * expected, f"read {reading:.1f}%, used {expected:.1f}%"


def test_busy_process_reads_as_busy(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn(BUSY)
    sampler = ProcessSampler(proc.pid)
    cpu_before, wall_before = _cpu_seconds(proc.pid), time.monotonic()
    first = sampler.sample()
    assert first.cpu_percent == 0.0  # priming
    time.sleep(1.0)
    busy = sampler.sample()
    assert_matches_own_usage(busy.cpu_percent, proc.pid, cpu_before, wall_before)
    assert busy.timestamp > first.timestamp
    assert busy.rss_mb > 1.0


def test_rss_counts_touched_memory(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn(HOG)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    sample = ProcessSampler(proc.pid).sample()
    assert sample.rss_mb > 160.0


def test_children_count_only_when_included(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn(PARENT, "0")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    (child,) = psutil.Process(proc.pid).children()
    tree, alone = ProcessSampler(proc.pid), ProcessSampler(proc.pid, include_children=False)
    cpu_before, wall_before = _cpu_seconds(child.pid), time.monotonic()
    tree.sample(), alone.sample()
    time.sleep(1.0)
    assert_matches_own_usage(tree.sample().cpu_percent, child.pid, cpu_before, wall_before)
    assert alone.sample().cpu_percent < 2.0  # the parent only waits


def test_child_started_between_samples_counts(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn(PARENT, "0.3")
    sampler = ProcessSampler(proc.pid)
    wall_before = time.monotonic()
    sampler.sample()  # before the child exists
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    (child,) = psutil.Process(proc.pid).children()
    time.sleep(1.0)
    assert_matches_own_usage(sampler.sample().cpu_percent, child.pid, 0.0, wall_before)


def test_exited_process_is_a_clear_error(spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn("pass")
    sampler = ProcessSampler(proc.pid)
    proc.wait(timeout=10)
    with pytest.raises(SamplingError, match=f"{proc.pid} has exited"):
        sampler.sample()


def test_unknown_pid_is_a_clear_error() -> None:
    with pytest.raises(SamplingError, match="is the server running"):
        ProcessSampler(2**22 + 12345)
