"""Start a model server process (ours or tensorflow_model_server) and read its ports from its log.

No pytest here: tests, benchmarks and tools share it. The readiness lines are the ones
tensorflow_model_server prints, so the same code waits for the real binary too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_tfserving.process.cleanup import parent_death_preexec

GRPC_LINE = re.compile(r"Running gRPC ModelServer at [^\s:]+:(\d+)")
REST_LINE = re.compile(r"Exporting HTTP/REST API at:[^\s:]+:(\d+)")


class LaunchError(RuntimeError):
    """The server exited or did not announce readiness in time; the message carries its log tail."""


def embedded_command(*flags: str) -> list[str]:
    """argv for our server under this interpreter."""
    return [sys.executable, "-m", "pytest_tfserving.embedded", *flags]


@dataclass
class ServerProcess:
    """A running server: ports from its readiness lines and its combined output."""

    process: subprocess.Popen[bytes]
    grpc_port: int = 0
    rest_port: int = 0
    _lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def log(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            with self._lock:
                self._lines.append(raw.decode(errors="replace"))

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def start_server(
    argv: Sequence[str], timeout_s: float = 120.0, want_rest: bool = True, env: dict[str, str] | None = None
) -> ServerProcess:
    """Run ``argv`` and wait for its gRPC (and REST) readiness lines; stops it again on failure."""
    environment = dict(os.environ if env is None else env)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    environment["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=environment,
        preexec_fn=parent_death_preexec(),  # dies with us, even when we are killed hard
    )
    server = ServerProcess(process)
    threading.Thread(target=server._pump, name="server-log", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            text = server.log()
            grpc_match, rest_match = GRPC_LINE.search(text), REST_LINE.search(text)
            if grpc_match and (rest_match or not want_rest):
                server.grpc_port = int(grpc_match.group(1))
                server.rest_port = int(rest_match.group(1)) if rest_match else 0
                return server
            if process.poll() is not None:
                raise LaunchError(
                    f"server exited with {process.returncode} before it was ready:\n{text[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise LaunchError(f"server not ready after {timeout_s:.0f} s:\n{text[-4000:]}")
            time.sleep(0.05)
    except BaseException:
        server.stop()
        raise
