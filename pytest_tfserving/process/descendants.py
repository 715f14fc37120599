"""What a launched process left behind outside its process group, found and stopped (Linux).

A server may start helpers in sessions of their own (``setsid``, a daemonizing double fork): the
launcher's group kill misses them and the parent-death signal is cleared on ``fork``. Two things
make them findable:

- the pytest process is a child subreaper (``cleanup.become_subreaper``): an orphaned descendant
  re-parents to us instead of init, so it stays in our process tree;
- each launch puts a token in its child's environment (``LAUNCH_ENV``), which its descendants
  inherit: ``<pytest pid>.<its start time>.<launch number>``.

``kill_launched`` kills the descendants of this process that carry one launch's token, and nothing
else: an xdist worker, a pytester subprocess or a test's own child has no token of ours (we never put
it in ``os.environ``); a process that cleared its environment is left alone rather than guessed at.
Off Linux (no /proc) nothing is found and the group kill is all there is.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

LAUNCH_ENV = "PYTEST_TFSERVING_LAUNCH"
REAP_TIMEOUT_S = 5.0

_PROC = Path("/proc")
_launches = itertools.count(1)


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); "0" where
    unknown. With the pid it names one process for the life of the machine."""
    try:
        return (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return "0"


def launch_token() -> str:
    """A new token for one launch by this process."""
    return f"{os.getpid()}.{_start_ticks(os.getpid())}.{next(_launches)}"


def children(pid: int) -> list[int]:
    """``pid``'s children, from /proc/PID/task/*/children (every thread's), else a scan of the
    parent pids (kernels without CONFIG_PROC_CHILDREN)."""
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    found: set[int] = set()
    try:
        for task in tasks:
            with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
                found.update(int(c) for c in (task / "children").read_text().split())
    except OSError:
        return _children_by_parent_scan(pid)
    return sorted(found)


def _children_by_parent_scan(pid: int) -> list[int]:
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree, parents before their children."""
    found: list[int] = []
    queue = children(pid)
    while queue:
        child = queue.pop(0)
        if child not in found:
            found.append(child)
            queue += children(child)
    return found


def carries(pid: int, token: str) -> bool:
    """Whether ``pid`` started with ``LAUNCH_ENV=token`` in its environment (False when unreadable:
    another user's process, or one that exited)."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{LAUNCH_ENV}={token}".encode() in environ.split(b"\0")


def kill_launched(token: str, *, spare: Iterable[int] = ()) -> list[int]:
    """SIGKILL this process's descendants that carry ``token`` (except the pids in ``spare``: the
    launched process itself, reaped by its ``Popen``), and reap those that re-parented to us.
    Returns the pids killed."""
    spared = set(spare)
    victims = [pid for pid in descendants(os.getpid()) if pid not in spared and carries(pid, token)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _reap(victims)
    return victims


def _reap(pids: list[int]) -> None:
    """Collect the exit status of those we killed that are our children, so they do not stay
    zombies until pytest exits: adopted orphans, which no ``Popen`` of ours or of a test owns (their
    parent died; the launched process itself is spared). The others are their parents' to reap."""
    deadline = time.monotonic() + REAP_TIMEOUT_S
    waiting = list(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid  # not our child
            if done:
                waiting.remove(pid)
        if waiting:
            time.sleep(0.01)
