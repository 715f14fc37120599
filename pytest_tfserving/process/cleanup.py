"""One registry of everything we started (processes, containers), stopped on exit, SIGTERM or Ctrl-C.

Normal teardown stops servers through the fixtures; this registry is the safety net for the paths that
skip teardown:

- interpreter exit (``atexit``): ``stop_all()`` runs for whatever is still registered;
- SIGTERM (CI cancelling a job): our handler stops everything, then re-delivers the signal to the
  previous handler (or the default action, so the exit status still says "killed by SIGTERM");
- SIGINT / KeyboardInterrupt: pytest runs fixture teardown as usual, and ``atexit`` covers the rest;
- the parent dying hard (SIGKILL, OOM): no Python code runs, so child *processes* are started with
  ``PR_SET_PDEATHSIG=SIGKILL`` on Linux (see ``parent_death_preexec``) and the kernel kills them;
  containers are reaped by testcontainers' Ryuk sidecar when it is enabled (the default);
- a launched process's descendants in sessions of their own (``setsid``): on Linux this process
  becomes a child subreaper once it registers something (``become_subreaper``), so they stay in
  our process tree, and ``ManagedProcess.stop`` kills those its launch started
  (``process.descendants``).

Every entry's ``stop`` must be idempotent; ``stop_all`` tolerates failures of single entries.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class Stoppable(Protocol):
    def stop(self) -> None: ...


_lock = threading.RLock()
_entries: dict[int, Stoppable] = {}
_installed = False
_previous_sigterm: Any = None

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
_subreaper_pid = 0  # the process that is a subreaper: a fork's child is not (the flag is not inherited)


def register(resource: Stoppable) -> Stoppable:
    """Track ``resource`` until ``unregister`` (returns it, to chain). Installs the handlers and
    makes this process a subreaper on first use."""
    install_handlers()
    become_subreaper()
    with _lock:
        _entries[id(resource)] = resource
    return resource


def unregister(resource: Stoppable) -> None:
    with _lock:
        _entries.pop(id(resource), None)


def registered() -> list[Stoppable]:
    with _lock:
        return list(_entries.values())


def stop_all() -> None:
    """Stop everything still registered, newest first; safe to call repeatedly and from handlers."""
    with _lock:
        entries = list(_entries.values())
        _entries.clear()
    for resource in reversed(entries):
        try:
            resource.stop()
        except Exception:  # one failure must not leave the others running
            logger.exception("pytest-tfserving: failed to stop %r", resource)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stop_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    # Default action: die by the signal so the exit status tells the truth.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def install_handlers() -> None:
    """Install the atexit hook and (from the main thread) the SIGTERM handler, once."""
    global _installed, _previous_sigterm
    with _lock:
        if _installed:
            return
        atexit.register(stop_all)
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGTERM)
            if current is not _on_sigterm:
                _previous_sigterm = current
                signal.signal(signal.SIGTERM, _on_sigterm)
        _installed = True


def _load_prctl() -> Callable[[int, int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[[int, int, int, int, int], int] = libc.prctl
        return prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``):
    a process that a server detached with ``setsid`` or a double fork re-parents to us, not to init,
    so the stop of its launch can still find it. Once per process; False where unsupported.

    The cost: an orphan of anything in this process tree that exits on its own stays a zombie until
    this process exits (then init reaps it); only the orphans ``process.descendants`` kills are reaped.
    """
    global _subreaper_pid
    with _lock:
        me = os.getpid()
        if _subreaper_pid != me and _prctl is not None and _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            _subreaper_pid = me
        return _subreaper_pid == me


def _set_parent_death_signal() -> None:
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def parent_death_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when its parent thread dies (Linux only).

    ``prctl`` is resolved before the fork, so the child only makes one libc call before ``exec``.
    Caveat (Linux semantics): the signal fires when the *thread* that forked exits, so start servers
    from a long-lived thread (pytest runs fixtures in the main thread). Returns None off Linux.
    """
    return _set_parent_death_signal if _prctl is not None else None
