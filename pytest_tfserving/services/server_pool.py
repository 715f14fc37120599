"""Running servers of one session, keyed by ServerSpec: an identical spec reuses the running server.

When several GPU servers run at once (``concurrent_gpu_servers`` > 1, e.g. A and B of --ab-baseline)
each is launched with its share of GPU memory (``serving.gpu_share``) unless its spec sets one."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from pytest_tfserving.backends.base import Backend, RunningServer
from pytest_tfserving.serving.gpu_share import gpu_memory_fraction_for, with_gpu_share
from pytest_tfserving.serving.spec import ServerSpec


class ServerPool:
    """Starts servers on demand through one backend and stops them all at the end of the session."""

    def __init__(
        self, backend: Backend, workdir: Path, startup_timeout_s: float, concurrent_gpu_servers: int = 1
    ) -> None:
        gpu_memory_fraction_for(concurrent_gpu_servers)  # a bad count fails here, not at the first start
        self._backend = backend
        self._concurrent_gpu_servers = concurrent_gpu_servers
        self._workdir = workdir
        self._startup_timeout_s = startup_timeout_s
        self._servers: dict[ServerSpec, RunningServer] = {}
        self._lock = threading.Lock()

    @property
    def backend_name(self) -> str:
        return self._backend.name

    def get(self, spec: ServerSpec) -> RunningServer:
        """The running server for ``spec``; started now unless an identical one already runs.

        The server is launched with its GPU share but keeps ``spec`` as its ``spec``: the share depends
        on this session, not on the deployment, so fingerprints and deployment records leave it out."""
        spec.validate()
        with self._lock:
            server = self._servers.get(spec)
            if server is not None:
                server.check_alive()
                return server
            digest = hashlib.sha256(repr(spec).encode()).hexdigest()[:12]
            workdir = self._workdir / f"server-{digest}"
            workdir.mkdir(parents=True, exist_ok=True)
            launched = with_gpu_share(spec, self._concurrent_gpu_servers)
            server = self._backend.start(launched, workdir, self._startup_timeout_s)
            server.spec = spec
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
