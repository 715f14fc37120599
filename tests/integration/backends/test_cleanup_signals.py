"""Everything we start dies with the session: on SIGTERM (handler), and on SIGKILL (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from pytest_tfserving.services.redis_service import find_redis_server
from tests.unit.process.children import gone

CHILD = Path(__file__).with_name("child_servers.py")
ROOT = Path(__file__).resolve().parents[3]

needs_redis = pytest.mark.skipif(find_redis_server() is None, reason="redis-server not installed")


def _gone(pid: int, timeout_s: float = 15.0) -> bool:
    return gone(pid, timeout_s, poll_s=0.1)


def _alive(pid: int) -> bool:
    return not _gone(pid, timeout_s=0.0)


def _start_child(
    tmp_path: Path, *kinds: str, timeout_s: float = 150.0
) -> tuple[subprocess.Popen[str], list[int]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path), *kinds],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()  # blocks until the child printed its pids (or died)
    if not line:
        _, err = child.communicate(timeout=timeout_s)
        pytest.fail(f"child failed to start servers:\n{err[-3000:]}")
    pids = json.loads(line)
    assert all(psutil.pid_exists(pid) for pid in pids)
    return child, pids


def _stop_child(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        child.kill()
    child.communicate(timeout=30)


@needs_redis
def test_sigterm_stops_everything_and_keeps_the_exit_status(tmp_path: Path, tiny_model_dir: Path) -> None:
    child, pids = _start_child(tmp_path, "redis", f"embedded:{tiny_model_dir}")
    tree = [c.pid for pid in pids for c in psutil.Process(pid).children(recursive=True)]
    try:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == -signal.SIGTERM
        everything = pids + tree
        assert all(_gone(pid) for pid in everything), f"left over: {[p for p in everything if _alive(p)]}"
    finally:
        _stop_child(child)


@needs_redis
def test_sigkill_of_the_parent_kills_children_through_pdeathsig(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    child, pids = _start_child(tmp_path, "redis")
    try:
        child.send_signal(signal.SIGKILL)  # no Python code runs: only the kernel can clean up
        child.wait(timeout=30)
        assert all(_gone(pid) for pid in pids), f"left over: {[p for p in pids if psutil.pid_exists(p)]}"
    finally:
        _stop_child(child)
