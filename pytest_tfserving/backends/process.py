"""A child process we own: own process group, log file, readiness wait, crash detection, group stop.

Shared by the embedded and binary server backends and the local redis service, so the rules live in
one place: start_new_session (the whole group can be signalled), PR_SET_PDEATHSIG on Linux (the child
dies with us even on SIGKILL), stdout+stderr into one log file in the workdir, registration in
``pytest_tfserving.process.cleanup`` so SIGTERM and interpreter exit stop it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pytest_tfserving.backends.base import BackendError, ServerCrashed
from pytest_tfserving.process import cleanup

LOG_TAIL_LINES = 60


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One started child process and its log file. ``stop`` is idempotent."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.log_path = Path(log_path)
        self.name = name or Path(self.argv[0]).name
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing after we return
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
                preexec_fn=cleanup.parent_death_preexec(),  # see cleanup.parent_death_preexec
            )
        except FileNotFoundError as exc:
            raise BackendError(f"cannot start {self.name}: {exc}") from exc
        finally:
            log_file.close()
        self._stopped = False
        cleanup.register(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def returncode(self) -> int | None:
        return self.popen.poll()

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ServerCrashed(
                f"{self.name} (pid {self.pid}) exited with status {code}; log {self.log_path}, last lines:\n"
                f"{tail(self.logs())}"
            )

    def wait_for_log(
        self, patterns: Mapping[str, str], timeout_s: float, poll_s: float = 0.05
    ) -> dict[str, re.Match[str]]:
        """Wait until every regex in ``patterns`` (name -> regex) matched the log; returns the matches.

        Raises ServerCrashed if the process exits first, BackendError with the log tail on timeout.
        """
        compiled = {key: re.compile(rx) for key, rx in patterns.items()}
        found: dict[str, re.Match[str]] = {}
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.logs()
            for key, rx in compiled.items():
                if key not in found and (match := rx.search(text)):
                    found[key] = match
            if len(found) == len(compiled):
                return found
            self.check_alive()
            if time.monotonic() > deadline:
                missing = ", ".join(sorted(set(compiled) - set(found)))
                raise BackendError(
                    f"{self.name} (pid {self.pid}) not ready after {timeout_s:.0f}s "
                    f"(waiting for: {missing}); raise the startup timeout if the models are large. "
                    f"Log {self.log_path}, last lines:\n"
                    f"{tail(text)}"
                )
            time.sleep(poll_s)

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1) -> None:
        """Poll ``ready()`` (exceptions count as not ready) until true; crash and timeout carry the log."""
        deadline = time.monotonic() + timeout_s
        last_error = ""
        while True:
            self.check_alive()
            try:
                if ready():
                    return
            except Exception as exc:  # transient while the server starts
                last_error = f" (last error: {exc})"
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{self.name} (pid {self.pid}) not ready after {timeout_s:.0f}s: {what}{last_error}. "
                    f"Log {self.log_path}, last lines:\n{tail(self.logs())}"
                )
            time.sleep(poll_s)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, wait ``grace_s``, then SIGKILL the group; reap the child."""
        if self._stopped:
            return
        self._stopped = True
        cleanup.unregister(self)
        pgid = self.pid  # start_new_session: the child leads its own group
        if self.popen.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace_s)
        # Kill leftovers in the group even when the leader already exited (grandchildren).
        _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5.0)

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, log={str(self.log_path)!r})"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
