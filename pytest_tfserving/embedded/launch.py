"""Start a model server process (ours or tensorflow_model_server) and read its ports from its log.

No pytest here: tests, benchmarks and tools share it, on top of ``process.launcher``. The readiness
lines are the ones tensorflow_model_server prints (``process.ready_line``), so the same code waits for
the real binary too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_tfserving.process.launcher import Launch, ManagedProcess, launch
from pytest_tfserving.process.ready_line import GRPC_READY, REST_READY
from pytest_tfserving.process.wait import AllOf, LogLineWait

STOP_GRACE_S = 15.0
EMBEDDED_MODULE = "pytest_tfserving.embedded"


def embedded_command(*flags: str) -> list[str]:
    """argv for our server under this interpreter."""
    return [sys.executable, "-m", EMBEDDED_MODULE, *flags]


def server_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: unbuffered output (readiness lines arrive at once), quiet TF C++ logs."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class AnnouncedPorts(AllOf):
    """The gRPC (and REST) readiness lines; ``grpc_port``/``rest_port`` read them once seen."""

    def __init__(self, want_rest: bool = True) -> None:
        self.grpc = LogLineWait(GRPC_READY, "the gRPC readiness line")
        self.rest = LogLineWait(REST_READY, "the REST readiness line") if want_rest else None
        super().__init__(self.grpc, *([self.rest] if self.rest else []))

    @property
    def grpc_port(self) -> int:
        return int(self.grpc.group("port"))

    @property
    def rest_port(self) -> int:
        return int(self.rest.group("port")) if self.rest is not None else 0


class ServerProcess:
    """A running server: ports from its readiness lines, its combined output, ``stop`` with exit code."""

    def __init__(self, managed: ManagedProcess, grpc_port: int, rest_port: int, own_dir: Path | None) -> None:
        self.managed = managed
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self._own_dir = own_dir  # a temporary log directory we remove on stop
        self._final_log: str | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.managed.popen

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log(self) -> str:
        return self.managed.logs() if self._final_log is None else self._final_log

    def stop(self, timeout_s: float = STOP_GRACE_S) -> int:
        """SIGTERM the group, then SIGKILL after ``timeout_s``; returns the exit code."""
        self.managed.stop(grace_s=timeout_s)
        if self._own_dir is not None and self._final_log is None:
            self._final_log = self.managed.logs()
            shutil.rmtree(self._own_dir, ignore_errors=True)
        return int(self.process.wait())


def start_server(
    argv: Sequence[str],
    timeout_s: float = 120.0,
    want_rest: bool = True,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> ServerProcess:
    """Run ``argv`` and wait for its gRPC (and REST) readiness lines; stops it again on failure.

    The log goes to ``log_path``, or to a temporary file that ``stop`` removes (``log()`` still works;
    after a failed start it stays, for the path in the error). Raises ServerCrashed if the server exits
    first, ReadinessTimeout (a BackendError) with its log tail on timeout.
    """
    own_dir = None
    if log_path is None:
        own_dir = Path(tempfile.mkdtemp(prefix="tfserving-server-"))
        log_path = own_dir / "server.log"
    ports = AnnouncedPorts(want_rest)
    name = "embedded server" if EMBEDDED_MODULE in argv else None
    managed = launch(Launch(argv, log_path, ports, env=server_env(env), name=name), timeout_s, poll_s=0.05)
    return ServerProcess(managed, ports.grpc_port, ports.rest_port, own_dir)
