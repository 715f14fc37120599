"""SIGTERM to a pytest session stops what the session started, including what the kernel would not.

A launched server dies with pytest anyway when pytest dies (``PR_SET_PDEATHSIG``), so the SIGTERM
handler only shows its worth on processes the parent-death signal does not reach: a server's own
children (the setting is cleared on ``fork``), like a server that starts workers. Here pytest runs as
its own process, launches such a server through ``process.launcher.launch`` inside a test, and is
sent SIGTERM (as a CI runner cancelling a job sends it) while the test sleeps. Workers in the server's
group go with the group kill; helpers it detached (``setsid``, a double fork) only through the
subreaper and the launch token (``process.descendants``), which must spare every process of the
session that the plugin did not start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import pytest_tfserving
from tests.unit.process.children import DETACHES_HELPERS, HAS_GRANDCHILD, SPAWNS_A_DAEMON, gone, python

# The test the inner session runs: launch the server of server_argv.json, publish the pids, sleep.
HOLDS_A_SERVER_WITH_A_GRANDCHILD = """
import json
import os
import time
from pathlib import Path

from pytest_tfserving.process.launcher import Launch, launch
from pytest_tfserving.process.wait import LogLineWait


def test_holds_a_server_with_a_grandchild(tmp_path):
    here = Path(__file__).parent
    ready = LogLineWait(r"grandchild (?P<pid>\\d+)")
    argv = json.loads((here / "server_argv.json").read_text())
    server = launch(Launch(argv, tmp_path / "server.log", ready, name="server"), 60.0)
    (here / "pids.tmp").write_text(f"{server.pid} {ready.group('pid')}")
    os.replace(here / "pids.tmp", here / "pids.txt")
    time.sleep(600)
"""

# Launches the server of server_argv.json, which detaches two helpers from its process group; then,
# beside it, starts two processes that are not the plugin's (as pytest-xdist workers, pytester runs or
# a test's own daemon are): a child in its own session and an orphan this process adopts as subreaper.
HOLDS_A_SERVER_THAT_DETACHES_HELPERS = """
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pytest_tfserving.process.launcher import Launch, launch
from pytest_tfserving.process.wait import LogLineWait


def test_holds_a_server_that_detaches_helpers(tmp_path):
    here = Path(__file__).parent
    ready = LogLineWait(r"helpers (?P<own>\\d+) (?P<daemon>\\d+)")
    argv = json.loads((here / "server_argv.json").read_text())
    server = launch(Launch(argv, tmp_path / "server.log", ready, name="server"), 60.0)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                 start_new_session=True)
    stray = subprocess.run(json.loads((here / "daemon_argv.json").read_text()),
                           capture_output=True, text=True, check=True).stdout.strip()
    pids = f"{server.pid} {ready.group('own')} {ready.group('daemon')} {bystander.pid} {stray}"
    (here / "pids.tmp").write_text(pids)
    os.replace(here / "pids.tmp", here / "pids.txt")
    time.sleep(600)
"""

STARTUP_WAIT_S = 60.0
EXIT_WAIT_S = 30.0
GONE_WAIT_S = 5.0


def inner_env() -> dict[str, str]:
    """The inner session imports the same ``pytest_tfserving`` as this test."""
    root = str(Path(pytest_tfserving.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(params=[(HOLDS_A_SERVER_WITH_A_GRANDCHILD, HAS_GRANDCHILD)], ids=["grandchild"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``python -m pytest`` on the inner test (the plugin loads through its entry point) with the
    server script of the param; whatever is left of it and of its server is killed at the end, so a
    red run leaves nothing behind."""
    inner_test, server_script = request.param
    (tmp_path / "test_inner.py").write_text(inner_test)
    (tmp_path / "server_argv.json").write_text(json.dumps(python(server_script)))
    (tmp_path / "daemon_argv.json").write_text(json.dumps(python(SPAWNS_A_DAEMON)))
    log = tmp_path / "pytest-output.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "test_inner.py"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=inner_env(),
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=EXIT_WAIT_S)
        pids = tmp_path / "pids.txt"
        for pid in map(int, pids.read_text().split()) if pids.exists() else ():
            if alive(pid) and "python" in psutil.Process(pid).name():
                os.kill(pid, signal.SIGKILL)


def wait_for_pids(proc: subprocess.Popen[bytes], log: Path) -> list[int]:
    pids = log.parent / "pids.txt"
    deadline = time.monotonic() + STARTUP_WAIT_S
    while not pids.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the inner session never published its server's pids:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)
    return [int(pid) for pid in pids.read_text().split()]


def test_sigterm_stops_a_grandchild_the_parent_death_signal_misses(
    session: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, log = session
    server, grandchild = wait_for_pids(proc, log)
    assert alive(server) and alive(grandchild)
    assert os.getpgid(grandchild) == server, "the grandchild sits in the server's process group"

    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pytest did not exit within {EXIT_WAIT_S:.0f}s of SIGTERM:\n{log.read_text()[-4000:]}")

    assert proc.returncode == -signal.SIGTERM, log.read_text()[-4000:]
    assert gone(server, GONE_WAIT_S), "the launched server outlived the SIGTERMed session"
    assert gone(grandchild, GONE_WAIT_S), (
        f"the server's child (pid {grandchild}) outlived the SIGTERMed session: nothing stopped the "
        "server's process group"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper and /proc are Linux-only")
@pytest.mark.parametrize("session", [(HOLDS_A_SERVER_THAT_DETACHES_HELPERS, DETACHES_HELPERS)], indirect=True,
                         ids=["detached"])
def test_sigterm_stops_what_the_server_detached_and_nothing_else(
    session: tuple[subprocess.Popen[bytes], Path],
) -> None:
    """The server's helpers left its process group (setsid) or were orphaned at once (double fork):
    the group kill misses both, the parent-death signal too. The session, a subreaper, finds them
    by their launch's token and kills them; the processes beside the server that the plugin did not
    start (a child in its own session, an adopted orphan) are left running."""
    proc, log = session
    server, own_session, daemon, bystander, stray = wait_for_pids(proc, log)
    assert all(map(alive, (server, own_session, daemon, bystander, stray)))
    assert server not in {os.getsid(own_session), os.getsid(daemon)}, "outside the server's session and group"

    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pytest did not exit within {EXIT_WAIT_S:.0f}s of SIGTERM:\n{log.read_text()[-4000:]}")

    assert proc.returncode == -signal.SIGTERM, log.read_text()[-4000:]
    assert gone(server, GONE_WAIT_S), "the launched server outlived the SIGTERMed session"
    assert gone(own_session, GONE_WAIT_S), "the server's setsid child outlived the SIGTERMed session"
    assert gone(daemon, GONE_WAIT_S), "the server's double-forked daemon outlived the SIGTERMed session"
    assert alive(bystander), "the sweep killed a child of the session that the plugin did not start"
    assert alive(stray), "the sweep killed an orphan the session adopted that the plugin did not start"
