"""Running servers of one session, keyed by ServerSpec: an identical spec reuses the running server."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from pytest_tfserving.backends.base import Backend, RunningServer
from pytest_tfserving.serving.spec import ServerSpec


class ServerPool:
    """Starts servers on demand through one backend and stops them all at the end of the session."""

    def __init__(self, backend: Backend, workdir: Path, startup_timeout_s: float) -> None:
        self._backend = backend
        self._workdir = workdir
        self._startup_timeout_s = startup_timeout_s
        self._servers: dict[ServerSpec, RunningServer] = {}
        self._lock = threading.Lock()

    @property
    def backend_name(self) -> str:
        return self._backend.name

    def get(self, spec: ServerSpec) -> RunningServer:
        """The running server for ``spec``; started now unless an identical one already runs."""
        spec.validate()
        with self._lock:
            server = self._servers.get(spec)
            if server is not None:
                server.check_alive()
                return server
            digest = hashlib.sha256(repr(spec).encode()).hexdigest()[:12]
            workdir = self._workdir / f"server-{digest}"
            workdir.mkdir(parents=True, exist_ok=True)
            server = self._backend.start(spec, workdir, self._startup_timeout_s)
            self._servers[spec] = server
            return server

    def running(self) -> list[RunningServer]:
        with self._lock:
            return list(self._servers.values())

    def stop_all(self) -> list[BaseException]:
        """Stop every server, newest first; errors are collected so one failure stops no other."""
        with self._lock:
            servers = list(reversed(self._servers.values()))
            self._servers.clear()
        errors: list[BaseException] = []
        for server in servers:
            try:
                server.stop()
            except Exception as exc:
                errors.append(exc)
        return errors
