"""Running servers of one session, keyed by ServerSpec and replica: an identical spec reuses the
running server; replicas 1, 2, ... of a spec are further processes of it (--ab-replicas).

When several GPU servers run at once (``concurrent_gpu_servers`` > 1, e.g. the processes of A and B
under --ab-baseline) each is launched with its share of GPU memory (``serving.gpu_share``) unless its
spec sets one."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
        self._servers: dict[tuple[ServerSpec, int], RunningServer] = {}
        self._lock = threading.Lock()
        # Threads that start servers side by side. They live as long as the pool: a process started
        # with PR_SET_PDEATHSIG (process.cleanup) is killed when the *thread* that forked it exits.
        self._starters: ThreadPoolExecutor | None = None

    @property
    def backend_name(self) -> str:
        return self._backend.name

    def get(self, spec: ServerSpec, replica: int = 0) -> RunningServer:
        """The running server for ``spec``; started now unless an identical one already runs.
        ``replica`` > 0: another process of the same spec (its own pool key)."""
        return self.ensure([(spec, replica)])[0]

    def ensure(self, keys: Sequence[tuple[ServerSpec, int]]) -> list[RunningServer]:
        """The running server of each ``(spec, replica)``; those not running yet are started side by
        side, each in its own work directory (--ab-replicas starts 2N - 1 at once)."""
        for spec, replica in keys:
            spec.validate()
            if replica < 0:
                raise ValueError(f"replica={replica!r} must be >= 0")
        with self._lock:
            missing = list(dict.fromkeys(key for key in keys if key not in self._servers))
            for key in keys:
                if key not in missing:
                    self._servers[key].check_alive()
            if len(missing) == 1:
                self._servers[missing[0]] = self._start(*missing[0])
            elif missing:
                if self._starters is None:
                    self._starters = ThreadPoolExecutor(max_workers=16, thread_name_prefix="server-start")
                futures = {key: self._starters.submit(self._start, *key) for key in missing}
                failures = []
                for key, future in futures.items():
                    error = future.exception()  # waits for it
                    if error is None:
                        self._servers[key] = future.result()
                    else:
                        failures.append(error)
                if failures:  # those that started are registered, so stop_all stops them
                    raise failures[0]
            return [self._servers[key] for key in keys]

    def _start(self, spec: ServerSpec, replica: int) -> RunningServer:
        digest = hashlib.sha256(repr(spec).encode()).hexdigest()[:12]
        workdir = self._workdir / (f"server-{digest}" + (f"-r{replica}" if replica else ""))
        workdir.mkdir(parents=True, exist_ok=True)
        launched = with_gpu_share(spec, self._concurrent_gpu_servers)
        server = self._backend.start(launched, workdir, self._startup_timeout_s)
        # The share depends on this session, not on the deployment: fingerprints and deployment
        # records read the spec that was asked for.
        server.spec = spec
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
        with self._lock:
            starters, self._starters = self._starters, None
        if starters is not None:  # only now: their servers are stopped
            starters.shutdown(wait=True)
        return errors
