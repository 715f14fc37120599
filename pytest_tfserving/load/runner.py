"""Synchronous entry points: ``measure`` (one server) and ``measure_interleaved`` (A/B, in one run).

Both run their own asyncio loop, so a pytest fixture or a script can call them directly. Payloads are
built once from the model's signature before any load starts.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_tfserving.load.clients import Client, open_client
from pytest_tfserving.load.loops import LoopPlan, WindowRecord, run_windows
from pytest_tfserving.load.measured_run import run_measured
from pytest_tfserving.load.payloads import PayloadOptions, RequestPool, build_pool, fetch_signature
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.server_latency import ServerLatencySource
from pytest_tfserving.load.summary import StabilityRule, Summarizer
from pytest_tfserving.load.wire import TensorSpec
from pytest_tfserving.load.workers import WorkerSpec, worker_main
from pytest_tfserving.metrics.resources import ResourceSampler

Progress = Callable[[WindowSummary], None]
_WORKER_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LoadConfig:
    """Which server to load and how: everything about one side of a measurement.

    ``target`` is "127.0.0.1:PORT" for gRPC or "http://127.0.0.1:PORT" for REST. Closed loop keeps
    ``concurrency`` requests in flight; open loop starts ``rate`` requests/s (``arrival`` "constant" or
    "poisson"). ``connections``: REST keep-alive connections (default: concurrency, or 64 in open loop).
    ``channels``: gRPC channels (TCP connections) per process. ``signature`` skips the metadata call.
    """

    target: str
    model_name: str
    protocol: str = "grpc"
    signature_name: str = "serving_default"
    mode: str = "closed"
    concurrency: int = 1
    rate: float | None = None
    arrival: str = "constant"
    payloads: PayloadOptions = field(default_factory=PayloadOptions)
    timeout_s: float = 10.0
    connections: int | None = None
    channels: int = 1
    max_in_flight: int = 1_000
    signature: Mapping[str, TensorSpec] | None = None
    sampler: ResourceSampler | None = None
    server_latency: ServerLatencySource | None = None

    def __post_init__(self) -> None:
        if self.protocol not in ("grpc", "rest"):
            raise ValueError(f"protocol must be 'grpc' or 'rest', got {self.protocol!r}")
        if self.mode not in ("closed", "open"):
            raise ValueError(f"mode must be 'closed' or 'open', got {self.mode!r}")
        if self.mode == "open" and (self.rate is None or self.rate <= 0):
            raise ValueError("open loop needs rate=<requests per second> > 0")
        if self.mode == "closed" and self.concurrency < 1:
            raise ValueError(f"closed loop needs concurrency >= 1, got {self.concurrency}")
        if self.protocol == "rest" and not self.target.startswith(("http://", "https://")):
            raise ValueError(f"REST target must be a URL like http://127.0.0.1:8501, got {self.target!r}")
        if self.protocol == "grpc" and "://" in self.target:
            raise ValueError(f"gRPC target must be host:port like 127.0.0.1:8500, got {self.target!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")

    @property
    def rest_connections(self) -> int:
        if self.connections is not None:
            return self.connections
        return self.concurrency if self.mode == "closed" else 64

    def pool(self) -> RequestPool:
        signature = self.signature or fetch_signature(
            self.target, self.protocol, self.model_name, self.signature_name, self.timeout_s
        )
        return build_pool(signature, self.protocol, self.model_name, self.signature_name, self.payloads)

    def open_client(self, pool: RequestPool) -> Client:
        return open_client(
            self.protocol,
            self.target,
            self.model_name,
            pool,
            timeout_s=self.timeout_s,
            connections=self.rest_connections,
            channels=self.channels,
        )

    def plan(
        self, *, warmup_s: float, window_s: float, max_windows: int, max_requests: int | None, seed: int
    ) -> LoopPlan:
        return LoopPlan(
            mode=self.mode,
            concurrency=self.concurrency,
            rate=self.rate or 0.0,
            arrival=self.arrival,
            warmup_s=warmup_s,
            window_s=window_s,
            max_windows=max_windows,
            max_requests=max_requests,
            max_in_flight=self.max_in_flight,
            seed=seed,
        )

    def summarizer(self, rule: StabilityRule, extra: dict[str, float] | None = None) -> Summarizer:
        return Summarizer(
            protocol=self.protocol,
            mode=self.mode,
            concurrency=self.concurrency if self.mode == "closed" else None,
            target_rps=self.rate if self.mode == "open" else None,
            rule=rule,
            sampler=self.sampler,
            server_latency=self.server_latency,
            extra=extra,
        )


def measure(
    target: str,
    model_name: str,
    *,
    protocol: str = "grpc",
    signature_name: str = "serving_default",
    mode: str = "closed",
    concurrency: int = 1,
    rate: float | None = None,
    arrival: str = "constant",
    warmup_s: float = 2.0,
    window_s: float = 1.0,
    min_windows: int = 3,
    max_windows: int = 10,
    stable_windows: int = 3,
    stable_tolerance: float = 0.10,
    max_requests: int | None = None,
    payloads: PayloadOptions | None = None,
    timeout_s: float = 10.0,
    connections: int | None = None,
    channels: int = 1,
    max_in_flight: int = 1_000,
    signature: Mapping[str, TensorSpec] | None = None,
    sampler: ResourceSampler | None = None,
    server_latency: ServerLatencySource | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    seed: int = 0,
) -> Measurement:
    """Load one server until the stability rule is met (or ``max_windows``) and summarize the run.

    ``sampler.sample()`` runs once at the start of measurement and once per window (server CPU/RSS/GPU);
    ``server_latency()`` likewise, for the server-side p50 per window. ``progress`` gets each window's
    summary as it finishes. ``workers > 1`` splits the load over that many spawned processes.
    """
    config = LoadConfig(
        target=target,
        model_name=model_name,
        protocol=protocol,
        signature_name=signature_name,
        mode=mode,
        concurrency=concurrency,
        rate=rate,
        arrival=arrival,
        payloads=payloads or PayloadOptions(),
        timeout_s=timeout_s,
        connections=connections,
        channels=channels,
        max_in_flight=max_in_flight,
        signature=signature,
        sampler=sampler,
        server_latency=server_latency,
    )
    return measure_config(
        config,
        warmup_s=warmup_s,
        window_s=window_s,
        rule=StabilityRule(min_windows, max_windows, stable_windows, stable_tolerance),
        max_requests=max_requests,
        progress=progress,
        workers=workers,
        seed=seed,
    )


def measure_config(
    config: LoadConfig,
    *,
    warmup_s: float = 2.0,
    window_s: float = 1.0,
    rule: StabilityRule | None = None,
    max_requests: int | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    seed: int = 0,
) -> Measurement:
    """``measure`` for a prepared LoadConfig."""
    rule = rule or StabilityRule()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if config.mode == "closed" and config.concurrency < workers:
        raise ValueError(f"concurrency {config.concurrency} < workers {workers}: every worker needs >= 1")
    pool = config.pool()
    plan = config.plan(
        warmup_s=warmup_s,
        window_s=window_s,
        max_windows=rule.max_windows,
        max_requests=max_requests,
        seed=seed,
    )
    summarizer = config.summarizer(rule, extra={"workers": float(workers)})
    if workers == 1:
        run_measured(_measure_in_process(config, pool, plan, summarizer, progress))
    else:
        _measure_with_workers(config, pool, plan, summarizer, progress, workers)
    return summarizer.measurement()


async def _run_segment(
    client: Client,
    plan: LoopPlan,
    summarizer: Summarizer,
    progress: Progress | None,
    stop_when_done: bool,
    origin: float | None = None,
) -> None:
    """Run ``plan`` on ``client``; windows are summarized off the loop (samplers may block).

    ``origin`` (loop clock) makes window start times relative to it instead of to this segment.
    """
    loop = asyncio.get_running_loop()
    windows: asyncio.Queue[WindowRecord | None] = asyncio.Queue()
    start_at = loop.time() + 0.01
    shift = 0.0 if origin is None else start_at + plan.warmup_s - origin
    stop = False

    async def consume() -> None:
        nonlocal stop
        await asyncio.sleep(max(0.0, start_at + plan.warmup_s - loop.time()))
        await asyncio.to_thread(summarizer.prime)
        while (record := await windows.get()) is not None:
            if stop:
                continue  # emitted while the stop was on its way: not part of the run
            record.start_s += shift
            summary = await asyncio.to_thread(summarizer.finish, record)
            if progress is not None:
                progress(summary)
            if stop_when_done and summarizer.done:
                stop = True

    consumer = loop.create_task(consume())
    try:
        await run_windows(client, plan, start_at, emit=windows.put_nowait, stop_requested=lambda: stop)
    finally:
        windows.put_nowait(None)
        await consumer


async def _measure_in_process(
    config: LoadConfig, pool: RequestPool, plan: LoopPlan, summarizer: Summarizer, progress: Progress | None
) -> None:
    client = config.open_client(pool)
    try:
        await _run_segment(client, plan, summarizer, progress, stop_when_done=True)
    finally:
        await client.close()


def _split(total: int, parts: int, k: int) -> int:
    return total // parts + (1 if k < total % parts else 0)


def _measure_with_workers(
    config: LoadConfig,
    pool: RequestPool,
    plan: LoopPlan,
    summarizer: Summarizer,
    progress: Progress | None,
    workers: int,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    procs = []
    for k in range(workers):
        share = replace(
            plan,
            concurrency=_split(plan.concurrency, workers, k),
            rate=plan.rate / workers,
            max_requests=None if plan.max_requests is None else -(-plan.max_requests // workers),
            seed=plan.seed + k,
            index_offset=k,
            index_stride=workers,
            schedule_offset_s=(k / plan.rate) if plan.mode == "open" and plan.arrival == "constant" else 0.0,
        )
        spec = WorkerSpec(
            config.protocol,
            config.target,
            config.model_name,
            pool,
            share,
            config.timeout_s,
            _split(config.rest_connections, workers, k) or 1,
            config.channels,
        )
        proc = ctx.Process(
            target=worker_main,
            args=(k, spec, out, go, start_at, stop),
            daemon=True,
            name=f"tfserving-load-{k}",
        )
        proc.start()
        procs.append(proc)
    try:
        _coordinate(out, go, stop, start_at, procs, plan, summarizer, progress)
    finally:
        stop.set()
        go.set()
        for proc in procs:
            proc.join(timeout=10)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        out.close()
        out.join_thread()


def _get(out: Any, procs: list[Any], deadline: float) -> tuple[str, int, object]:
    while True:
        try:
            return out.get(timeout=0.2)
        except queue_module.Empty:
            dead = [p.name for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
            if dead:
                raise RuntimeError(f"load worker(s) {dead} died without reporting; see stderr") from None
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "load workers stopped reporting (timed out waiting for a window)"
                ) from None


def _coordinate(
    out: Any,
    go: Any,
    stop: Any,
    start_at: Any,
    procs: list[Any],
    plan: LoopPlan,
    summarizer: Summarizer,
    progress: Progress | None,
) -> None:
    workers = len(procs)
    ready: set[int] = set()
    deadline = time.monotonic() + _WORKER_START_TIMEOUT_S
    while len(ready) < workers:
        kind, k, payload = _get(out, procs, deadline)
        if kind == "error":
            raise RuntimeError(f"load worker {k} failed:\n{payload}")
        ready.add(k)
    begin = time.monotonic() + 0.2
    start_at.value = begin
    go.set()
    time.sleep(max(0.0, begin + plan.warmup_s - time.monotonic()))
    summarizer.prime()
    pending: dict[int, list[WindowRecord]] = {}
    finished: set[int] = set()
    while len(finished) < workers:
        kind, k, payload = _get(out, procs, time.monotonic() + plan.window_s * 3 + 30.0)
        if kind == "error":
            raise RuntimeError(f"load worker {k} failed:\n{payload}")
        if kind == "done":
            finished.add(k)
            continue
        assert isinstance(payload, WindowRecord)
        parts = pending.setdefault(payload.index, [])
        parts.append(payload)
        if len(parts) < workers or stop.is_set():
            continue
        merged = parts[0]
        for part in parts[1:]:
            merged.merge(part)
        del pending[payload.index]
        summary = summarizer.finish(merged)
        if progress is not None:
            progress(summary)
        if summarizer.done:
            stop.set()


def measure_interleaved(
    a: LoadConfig,
    b: LoadConfig,
    rounds: int = 5,
    *,
    warmup_s: float = 2.0,
    window_s: float = 1.0,
    rewarm_s: float = 0.2,
    order: str = "abba",
    stable_windows: int = 3,
    stable_tolerance: float = 0.10,
    progress: Callable[[str, WindowSummary], None] | None = None,
    seed: int = 0,
) -> tuple[Measurement, Measurement]:
    """Measure two servers in alternating windows so drift (thermal, noisy neighbours) hits both alike.

    Each round runs one window of A and one of B; with ``order="abba"`` every other round runs B first,
    which also cancels a linear drift within the round. Before each window the side is re-warmed for
    ``rewarm_s`` (not measured). Returns (A, B), each with ``rounds`` windows.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if order not in ("abab", "abba"):
        raise ValueError(f"order must be 'abab' or 'abba', got {order!r}")
    rule = StabilityRule(
        min_windows=1, max_windows=rounds, last=min(stable_windows, rounds), tolerance=stable_tolerance
    )
    sides = {"a": a, "b": b}
    pools = {name: cfg.pool() for name, cfg in sides.items()}
    summaries = {
        name: cfg.summarizer(rule, extra={"interleaved_rounds": float(rounds)}) for name, cfg in sides.items()
    }
    run_measured(
        _interleave(sides, pools, summaries, rounds, warmup_s, window_s, rewarm_s, order, progress, seed)
    )
    return summaries["a"].measurement(), summaries["b"].measurement()


async def _interleave(
    sides: dict[str, LoadConfig],
    pools: dict[str, RequestPool],
    summaries: dict[str, Summarizer],
    rounds: int,
    warmup_s: float,
    window_s: float,
    rewarm_s: float,
    order: str,
    progress: Callable[[str, WindowSummary], None] | None,
    seed: int,
) -> None:
    clients = {name: cfg.open_client(pools[name]) for name, cfg in sides.items()}
    try:
        for name, cfg in sides.items():  # full warm-up once per side, not measured
            plan = cfg.plan(warmup_s=warmup_s, window_s=window_s, max_windows=1, max_requests=None, seed=seed)
            await run_windows(clients[name], plan, asyncio.get_running_loop().time(), emit=lambda r: None)
        origin = asyncio.get_running_loop().time()
        for r in range(rounds):
            names = ("b", "a") if order == "abba" and r % 2 else ("a", "b")
            for name in names:
                cfg = sides[name]
                plan = cfg.plan(
                    warmup_s=rewarm_s,
                    window_s=window_s,
                    max_windows=1,
                    max_requests=None,
                    seed=seed + 1000 * r,
                )
                report = None if progress is None else functools.partial(progress, name)
                await _run_segment(
                    clients[name], plan, summaries[name], report, stop_when_done=False, origin=origin
                )
    finally:
        await asyncio.gather(*(c.close() for c in clients.values()))
