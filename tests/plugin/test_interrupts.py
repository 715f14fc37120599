"""Ctrl-C and CI cancellation as users meet them: pytest runs as its own process, starts an embedded
server and a local Redis through the fixtures, and is interrupted; nothing it started may survive.

The signal goes to the pytest process only (as ``kill`` or a CI runner would send it); the servers sit
in their own sessions, so only the plugin's own handling can stop them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

HANGING_TEST = """
import os
import time
from pathlib import Path


def test_hangs_holding_services(tfserving_server, tfserving_redis):
    pids = Path(__file__).parent / "pids.txt"
    pids.with_suffix(".tmp").write_text(f"{tfserving_server.pid} {tfserving_redis.pid}\\n")
    os.replace(pids.with_suffix(".tmp"), pids)
    time.sleep(600)
"""

STARTUP_WAIT_S = 240.0  # TF import plus a server start on a loaded 2-core machine
EXIT_WAIT_S = 90.0


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"pytest exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def tree(pid: int) -> set[int]:
    try:
        return {pid} | {child.pid for child in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return {pid}


def in_session(pid: int, sid: int) -> bool:
    try:
        return os.getsid(pid) == sid
    except ProcessLookupError:
        return False


def leftovers(roots: list[int], known: set[int]) -> list[str]:
    """Processes still alive from our servers: known descendants, or anything in the servers' sessions
    (each server leads its own session), found by pid and by ``pgrep`` for embedded servers."""
    found = {pid for pid in known if running(pid)}
    found |= {
        p.pid
        for p in psutil.process_iter()
        if any(in_session(p.pid, root) for root in roots) and running(p.pid)
    }
    pgrep = subprocess.run(
        ["pgrep", "-f", "pytest_tfserving[.]embedded"], capture_output=True, text=True, check=False
    )
    found |= {
        int(pid)
        for pid in pgrep.stdout.split()
        if int(pid) in known or any(in_session(int(pid), root) for root in roots)
    }
    described = []
    for pid in sorted(found):
        try:
            described.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
        except psutil.NoSuchProcess:
            continue
    return described


def default_sigint() -> None:
    """Give the child Ctrl-C as a terminal would. A shell running us in the background (``cmd &``
    without job control) starts us with SIGINT ignored, children inherit that, and Python then
    installs no KeyboardInterrupt handler: the SIGINT under test would be lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def pytest_process(perf_project: pytest.Pytester) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``python -m pytest`` on the hanging test (the entry point loads the plugin); killed if still
    running at the end, together with any server it left behind."""
    perf_project.makepyfile(test_hang=HANGING_TEST)
    log = perf_project.path / "pytest-output.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--tfserving-backend=embedded",
                "--redis-backend=local",
                "-s",
                "test_hang.py",
            ],
            cwd=perf_project.path,
            preexec_fn=default_sigint,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        pids = perf_project.path / "pids.txt"
        for pid in map(int, pids.read_text().split()) if pids.exists() else ():
            if running(pid) and in_session(pid, pid):
                os.killpg(pid, signal.SIGKILL)  # a server this test started, left by a failure above


@pytest.mark.parametrize(
    ("sig", "exit_code"), [(signal.SIGINT, 2), (signal.SIGTERM, -signal.SIGTERM)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_during_a_test_stops_server_and_redis(
    pytest_process: tuple[subprocess.Popen[bytes], Path],
    perf_project: pytest.Pytester,
    sig: signal.Signals,
    exit_code: int,
) -> None:
    proc, log = pytest_process
    pids_file = perf_project.path / "pids.txt"
    wait_for(pids_file.exists, STARTUP_WAIT_S, "the server and Redis pids", proc, log)
    roots = [int(pid) for pid in pids_file.read_text().split()]
    known = set().union(*(tree(pid) for pid in roots))
    assert all(running(pid) for pid in roots), "the services should be up while the test sleeps"

    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"pytest did not exit within {EXIT_WAIT_S:.0f}s of {sig.name}:\n{log.read_text()[-4000:]}"
        )
    assert proc.returncode == exit_code, log.read_text()[-4000:]
    assert not leftovers(roots, known), log.read_text()[-4000:]


def test_sigint_while_the_server_starts_stops_it(
    pytest_process: tuple[subprocess.Popen[bytes], Path],
    perf_project: pytest.Pytester,
) -> None:
    proc, log = pytest_process
    servers: list[int] = []

    def server_spawned() -> bool:
        try:
            children = psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            return False
        servers.extend(c.pid for c in children if "pytest_tfserving.embedded" in cmdline(c.pid))
        return bool(servers)

    wait_for(server_spawned, STARTUP_WAIT_S, "the embedded server process", proc, log)
    os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pytest did not exit within {EXIT_WAIT_S:.0f}s of SIGINT:\n{log.read_text()[-4000:]}")
    assert not (perf_project.path / "pids.txt").exists(), "the interrupt should land before the server is up"
    assert proc.returncode == 2, log.read_text()[-4000:]
    assert not leftovers(servers, set(servers)), log.read_text()[-4000:]


# Writes a baseline file's text to argv[1] with the plugin's atomic write and SIGKILLs itself at the
# rename, as an OOM kill or a cancelled CI job would: its temp file stays behind.
KILLED_AT_THE_RENAME = """
import os, signal, sys
from pathlib import Path
from pytest_tfserving.gate.baselines import _atomic_write

def kill_at_the_rename(event, args):
    if event == "os.rename":
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(kill_at_the_rename)
_atomic_write(Path(sys.argv[1]), "{}")
"""


def test_the_next_session_removes_what_a_killed_baseline_write_left(perf_project: pytest.Pytester) -> None:
    baselines = perf_project.path / "baselines"
    writer = subprocess.run([sys.executable, "-c", KILLED_AT_THE_RENAME, str(baselines / "t.json")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    (left,) = baselines.iterdir()
    assert left.name.startswith(".t.json.") and left.name.endswith(".tmp")
    (baselines / "notes.tmp").write_text("not ours")
    perf_project.makepyfile(test_plain="def test_nothing_to_measure():\n    pass\n")

    result = perf_project.runpytest("--tfserving-backend=embedded", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        f"note: removed 1 temp file of interrupted baseline writes from {baselines}: {left.name}"
    ])
    assert [p.name for p in baselines.iterdir()] == ["notes.tmp"]
