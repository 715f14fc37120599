"""engine="locust": Locust's master and workers drive the load; our process merges their windows.

Our process starts the master (``locust_master``, its own process) and, unless the workers come from
elsewhere (``master_host``), ``workers`` Locust worker processes on 127.0.0.1 that load our user file
(``locust --worker -f locust_user.py``). All of them are ``process.launcher`` children: stopped when
the run ends, fails or is interrupted (Ctrl-C), and by ``process.cleanup`` on SIGTERM or exit. Each
worker cuts the same window records as our own generator; the master relays them here, where window
k of all workers is merged (``window_merge``, as for our own worker processes) and summarized into the
usual ``Measurement``. A worker that dies, quits or falls behind is an error naming it.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.locust_extra import KEY_ENV, READY_LINE, require_locust
from pytest_tfserving.load.locust_messages import RunSetup, record_from_data
from pytest_tfserving.load.loops import LoopPlan
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.segment import Progress
from pytest_tfserving.load.summary import Summarizer
from pytest_tfserving.load.window_merge import BEHIND_WINDOWS, WindowMerger
from pytest_tfserving.process.errors import tail
from pytest_tfserving.process.launcher import Launch, ManagedProcess, launch
from pytest_tfserving.process.wait import LogLineWait

DEFAULT_MASTER_PORT = 5557  # Locust's own default, for workers on other hosts
MASTER_START_TIMEOUT_S = 60.0


class LocustWorkerLost(RuntimeError):
    """A Locust worker died, quit or stopped reporting mid-run: an error, never a smaller measurement."""


@dataclass(frozen=True)
class LocustOptions:
    """How to run Locust. ``workers``: worker processes started here on 127.0.0.1. ``master_host``
    ("HOST" or "HOST:PORT", port default 5557): the master binds there instead and starts no workers;
    ``expect_workers`` workers started elsewhere (``locust --worker -f`` our user file) must connect."""

    workers: int = 1
    master_host: str | None = None
    expect_workers: int | None = None
    connect_timeout_s: float = 60.0
    log_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"Locust workers must be >= 1, got {self.workers}")
        if self.expect_workers is not None and self.expect_workers < 1:
            raise ValueError(f"expect_workers must be >= 1, got {self.expect_workers}")

    @property
    def local_workers(self) -> int:
        return 0 if self.master_host else self.workers

    @property
    def expected(self) -> int:
        if self.expect_workers is not None:
            return self.expect_workers
        return self.workers

    def bind(self) -> tuple[str, int]:
        if not self.master_host:
            return "127.0.0.1", 0
        host, colon, port = self.master_host.rpartition(":")
        if not colon:
            return self.master_host, DEFAULT_MASTER_PORT
        if not host or not port.isdigit():
            raise ValueError(f"Locust master host must be HOST or HOST:PORT, got {self.master_host!r}")
        return host, int(port)


def user_file() -> str:
    """The Locust file this package ships, for ``locust --worker -f``."""
    return str(Path(__file__).with_name("locust_user.py"))


def run_setup(config: LoadConfig, pool: RequestPool, plan: LoopPlan, users: int, workers: int) -> RunSetup:
    return RunSetup(
        protocol=config.protocol,
        target=config.target,
        model_name=config.model_name,
        bodies=pool.bodies,
        order=tuple(int(i) for i in pool.order),
        mode=plan.mode,
        users=users,
        rate=plan.rate,
        warmup_s=plan.warmup_s,
        window_s=plan.window_s,
        max_windows=plan.max_windows,
        timeout_s=config.timeout_s,
        workers=workers,
    )


def measure_with_locust(
    config: LoadConfig,
    pool: RequestPool,
    plan: LoopPlan,
    summarizer: Summarizer,
    progress: Progress | None,
    options: LocustOptions,
) -> None:
    """Run ``plan`` on Locust workers; closed loop: ``plan.concurrency`` users, open loop: that many
    users (at least one per worker) sharing ``plan.rate``."""
    require_locust()
    expected = options.expected
    users = max(plan.concurrency, expected)
    if plan.mode == "closed" and plan.concurrency < expected:
        raise ValueError(
            f"concurrency {plan.concurrency} < Locust workers {expected}: every worker needs a user"
        )
    setup = run_setup(config, pool, plan, users, expected)
    with contextlib.ExitStack() as stack:
        log_dir = options.log_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="tfs-locust-"))
        )
        key = secrets.token_hex(16)
        env = {**os.environ, KEY_ENV: key}
        master, control = _start_master(options, log_dir, env)
        stack.callback(master.stop)
        conn = Client(("127.0.0.1", control), authkey=bytes.fromhex(key))
        stack.callback(conn.close)
        conn.send({"setup": setup.to_data(), "workers": expected, "timeout_s": options.connect_timeout_s})
        workers: list[ManagedProcess] = []

        def start_workers(port: int) -> None:
            for k in range(options.local_workers):
                worker = ManagedProcess(
                    [sys.executable, "-m", "locust", "--worker", "-f", user_file(), "--master-host",
                     "127.0.0.1", "--master-port", str(port), "--loglevel", "WARNING"],
                    log_dir / f"locust-worker-{k}.log",
                    env=env,
                    name=f"locust worker {k}",
                )
                stack.callback(worker.stop)
                workers.append(worker)

        _Coordinator(conn, master, workers, plan, summarizer, progress, config.timeout_s).run(
            start_workers, options.connect_timeout_s
        )
        conn.send("stop")
        _drain_until(conn, "stopped", 10.0)


def _start_master(options: LocustOptions, log_dir: Path, env: dict[str, str]) -> tuple[ManagedProcess, int]:
    host, port = options.bind()
    ready = LogLineWait(
        READY_LINE + r" control=127\.0\.0\.1:(?P<control>\d+)", "the Locust master's ready line"
    )
    master = launch(
        Launch(
            [sys.executable, "-m", "pytest_tfserving.load.locust_master", "--bind-host", host, "--bind-port",
             str(port)],
            log_dir / "locust-master.log",
            ready,
            env=env,
            name="locust master",
        ),
        MASTER_START_TIMEOUT_S,
    )
    return master, int(ready.group("control"))


def _drain_until(conn: Connection, kind: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(EOFError, OSError):
        while time.monotonic() < deadline:
            if conn.poll(0.1):
                item = conn.recv()
                if item[0] == kind:
                    return


def _failure(who: str, why: str, master: ManagedProcess) -> LocustWorkerLost:
    if who == "master":
        return LocustWorkerLost(f"Locust master: {why}; log {master.log_path}:\n{tail(master.logs(), 20)}")
    return LocustWorkerLost(f"Locust worker {who} failed:\n{why}")


class _Coordinator:
    """Our side of the run: windows in, merged windows summarized, every process watched."""

    def __init__(
        self,
        conn: Connection,
        master: ManagedProcess,
        workers: list[ManagedProcess],
        plan: LoopPlan,
        summarizer: Summarizer,
        progress: Progress | None,
        timeout_s: float,
    ) -> None:
        self.conn, self.master, self.workers = conn, master, workers
        self.plan, self.summarizer, self.progress = plan, summarizer, progress
        self.merger: WindowMerger | None = None
        self.measure_start: float | None = None
        # A worker ships window k once its requests of window k have answered: one slow request
        # (up to the timeout) delays it that long without the worker being dead.
        self.behind_limit = BEHIND_WINDOWS + math.ceil(timeout_s / plan.window_s)

    def _check_processes(self) -> None:
        self.master.check_alive()
        for worker in self.workers:
            code = worker.returncode()
            if code is not None:
                raise LocustWorkerLost(
                    f"{worker.name} (pid {worker.pid}) exited with status {code} during the measurement; "
                    f"log {worker.log_path}, last lines:\n{tail(worker.logs(), 20)}"
                )

    def _next(self, deadline: float, waiting_for: str) -> tuple[Any, ...]:
        while True:
            self._check_processes()
            try:
                if self.conn.poll(0.1):
                    item: tuple[Any, ...] = self.conn.recv()
                    return item
            except (EOFError, OSError):
                self.master.check_alive()
                raise RuntimeError(
                    f"lost the connection to the Locust master; log {self.master.log_path}"
                ) from None
            if self.measure_start is not None and time.monotonic() >= self.measure_start:
                self._prime()
            if time.monotonic() > deadline:
                raise LocustWorkerLost(
                    f"no word from the Locust workers for {waiting_for}; master log {self.master.log_path}:\n"
                    f"{tail(self.master.logs(), 20)}"
                )

    def _prime(self) -> None:
        self.summarizer.prime()
        self.measure_start = None

    def run(self, start_workers: Callable[[int], None], connect_timeout_s: float) -> None:
        deadline = time.monotonic() + connect_timeout_s
        while True:
            kind, *rest = self._next(deadline, "the workers to connect and start")
            if kind == "port":
                start_workers(int(rest[0]))
            if kind == "failed":
                raise _failure(rest[0], rest[1], self.master)
            if kind == "workers":
                self.merger = WindowMerger(rest[0])
            if kind == "go":
                self.measure_start = time.monotonic() + float(rest[0]) + self.plan.warmup_s
                break
        assert self.merger is not None
        while True:
            deadline = time.monotonic() + self.plan.warmup_s + self.plan.window_s * 3 + 30.0
            kind, *rest = self._next(deadline, "a window")
            if kind == "failed":
                raise _failure(rest[0], rest[1], self.master)
            if kind == "lost":
                raise LocustWorkerLost(
                    f"Locust worker(s) {rest[0]} {rest[1]} during the measurement; master log "
                    f"{self.master.log_path}:\n{tail(self.master.logs(), 20)}"
                )
            if kind != "window":
                continue
            if self.measure_start is not None:
                self._prime()
            merged = self.merger.add(rest[0], record_from_data(rest[1]))
            behind = self.merger.behind(self.behind_limit)
            if behind:
                raise LocustWorkerLost(
                    f"Locust worker(s) {', '.join(map(str, behind))} stopped sending windows during the "
                    f"measurement (others are {self.behind_limit} or more windows ahead)"
                )
            if merged is None:
                continue
            summary = self.summarizer.finish(merged)
            if self.progress is not None:
                self.progress(summary)
            if self.summarizer.done or len(self.summarizer.windows) >= self.plan.max_windows:
                return
