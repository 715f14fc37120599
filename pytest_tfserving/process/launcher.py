"""The one way we start a child process: own process group, log file, readiness wait, crash check, group stop.

Shared by the embedded and binary server backends, the benchmarks' ``start_server`` and the local redis
service, so the rules live in one place: start_new_session (the whole group can be signalled),
PR_SET_PDEATHSIG on Linux (the child dies with us even on SIGKILL), stdout+stderr into one log file,
registration in ``pytest_tfserving.process.cleanup`` so SIGTERM and interpreter exit stop it (and what
it detached with ``setsid``: ``process.descendants``), and one retry rule for servers that lose a race
for a port we picked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_tfserving.process import cleanup, descendants
from pytest_tfserving.process.errors import BackendError, ServerCrashed, tail
from pytest_tfserving.process.ports import address_in_use, free_loopback_ports
from pytest_tfserving.process.wait import WaitStrategy, wait_until_ready

BIND_ATTEMPTS = 3
STOP_GRACE_S = 10.0  # SIGTERM to SIGKILL
REAP_TIMEOUT_S = 5.0  # after SIGKILL
STARTUP_HINT = "raise the startup timeout if the models are large"


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
        # Inherited by its descendants: what ``stop`` kills beyond the process group. Subreaper
        # before the start, so a helper orphaned at once (a double fork) still re-parents to us.
        self.token = descendants.launch_token()
        cleanup.become_subreaper()
        child_env = {**(os.environ if env is None else env), descendants.LAUNCH_ENV: self.token}
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing after we return
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=child_env,
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
        return _read(self.log_path)

    def returncode(self) -> int | None:
        return self.popen.poll()

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ServerCrashed(
                f"{self.name} (pid {self.pid}) exited with status {code}; log {self.log_path}, last lines:\n"
                f"{tail(self.logs())}"
            )

    def wait_ready(
        self, strategy: WaitStrategy, timeout_s: float, *, hint: str = "", poll_s: float = 0.1
    ) -> None:
        """Wait for ``strategy``: ServerCrashed if we die first, ReadinessTimeout with the log on timeout."""
        wait_until_ready(
            strategy,
            timeout_s,
            self,
            self.logs,
            subject=f"{self.name} (pid {self.pid})",
            log_label=f"Log {self.log_path}",
            hint=hint,
            poll_s=poll_s,
        )

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, wait ``grace_s``, then SIGKILL the group; reap the child; then
        SIGKILL what it started outside its group (``descendants.kill_launched``)."""
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
            self.popen.wait(timeout=REAP_TIMEOUT_S)
        descendants.kill_launched(self.token, spare=(self.pid,))

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, log={str(self.log_path)!r})"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass(frozen=True)
class Launch:
    """What to run and what "ready" means for it."""

    argv: Sequence[str]
    log_path: Path
    ready: WaitStrategy
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    name: str | None = None


def launch(command: Launch, timeout_s: float, *, hint: str = "", poll_s: float = 0.1) -> ManagedProcess:
    """Start ``command`` and wait until it is ready; on any failure it is stopped before the error rises."""
    process = ManagedProcess(
        command.argv, command.log_path, env=command.env, cwd=command.cwd, name=command.name
    )
    try:
        process.wait_ready(command.ready, timeout_s, hint=hint, poll_s=poll_s)
    except BaseException:
        process.stop()
        raise
    return process


def launch_on_free_ports(
    plan: Callable[[tuple[int, ...]], Launch],
    ports: int,
    timeout_s: float,
    *,
    attempts: int = BIND_ATTEMPTS,
    hint: str = "",
    poll_s: float = 0.1,
) -> tuple[ManagedProcess, tuple[int, ...]]:
    """For servers that cannot bind port 0: pick ``ports`` free loopback ports, ``plan`` the command.

    When the start fails and the log says the address was taken (another process won the race for
    the port in between), try again on fresh ports, up to ``attempts`` times within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    for attempt in range(1, attempts + 1):
        chosen = free_loopback_ports(ports)
        command = plan(chosen)
        try:
            process = launch(command, max(1.0, deadline - time.monotonic()), hint=hint, poll_s=poll_s)
        except BackendError:
            if attempt < attempts and address_in_use(_read(command.log_path)):
                continue  # lost the bind race: new ports
            raise
        return process, chosen
    raise AssertionError("unreachable")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
