"""Two servers measured in the same moments: every worker alternates its requests between them.

Window interleaving (``measure_interleaved``) cancels drift slower than a window pair. On a shared VM
the speed also changes within a second (window p50s of one server swing 1.2 -> 2.4 ms from one second
to the next), and then window pairs differ by 10-25 % on identical deployments. Alternating request
by request puts both sides in every millisecond: measured here, the paired window ratios of identical
deployments then agree within about 2 % (``benchmarks/gate_quality.py``).

Several processes per side (--ab-replicas): ``a`` and ``b`` may each be a sequence of configs, one
per server process of that side; window ``i`` sends to process ``i mod m`` of each side (the warm-up
rotates request by request over all of them), so the pairs rotate over the processes.

Closed loop only: ``concurrency`` workers each send to one side, wait, then to the other (the order
flips every round), so the machine holds ``concurrency`` requests in flight in all, about half for
each side, and never two of one worker at once. Latencies are binned by completion time into windows
shared by both sides; each side's windows are summarized by its own Summarizer (its resource sampler
and server-latency source), so window ``i`` of A and of B cover the same seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

from pytest_tfserving.load.clients import Client
from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.loops import WindowGrid, WindowRecord
from pytest_tfserving.load.measured_run import run_measured
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.segment import Side
from pytest_tfserving.load.summary import StabilityRule


def measure_alternating(
    a: LoadConfig | Sequence[LoadConfig],
    b: LoadConfig | Sequence[LoadConfig],
    windows: int,
    *,
    warmup_s: float = 2.0,
    window_s: float = 1.0,
) -> tuple[Measurement, Measurement]:
    """Load ``a`` and ``b`` alternately for ``windows`` windows after a warm-up; returns (A, B).

    All configs must be closed loop with the same concurrency (the workers are shared). A sequence
    of configs is one per process of that side: window ``i`` loads process ``i mod len``; the first
    config's requests and summarizer (resource sampler, server latencies) serve the whole side.
    """
    replicas = (_replicas(a), _replicas(b))
    a, b = replicas[0][0], replicas[1][0]
    for config in (*replicas[0], *replicas[1]):
        if config.mode != "closed":
            raise ValueError(
                "measure_alternating needs closed-loop configs; use measure_interleaved for open loop"
            )
        if config.concurrency != a.concurrency:
            raise ValueError(
                f"both sides need the same concurrency, got {a.concurrency} and {config.concurrency}"
            )
    if windows < 1 or window_s <= 0 or warmup_s < 0:
        raise ValueError("windows must be >= 1, window_s > 0 and warmup_s >= 0")
    rule = StabilityRule(min_windows=1, max_windows=windows)
    extra = {"alternating": 1.0}
    sides = (Side.prepare(a, rule, extra), Side.prepare(b, rule, extra))
    run_measured(_alternate(sides, replicas, windows, warmup_s, window_s))
    return sides[0].summarizer.measurement(), sides[1].summarizer.measurement()


def _replicas(side: LoadConfig | Sequence[LoadConfig]) -> tuple[LoadConfig, ...]:
    configs = (side,) if isinstance(side, LoadConfig) else tuple(side)
    if not configs:
        raise ValueError("each side needs at least one LoadConfig")
    return configs


class _Windows:
    """The current window of each side (None during warm-up); swapped by the ticker."""

    def __init__(self) -> None:
        self.current: tuple[WindowRecord, WindowRecord] | None = None
        self.stopping = False

    def record(self, side: int, latency_s: float, ok: bool, status: str) -> None:
        if self.current is not None:
            self.current[side].add(latency_s, ok, status)


def _records(index: int, start_s: float) -> tuple[WindowRecord, WindowRecord]:
    return (
        WindowRecord(index=index, start_s=start_s, histogram=Histogram()),
        WindowRecord(index=index, start_s=start_s, histogram=Histogram()),
    )


async def _alternate(sides: tuple[Side, Side], replicas: tuple[tuple[LoadConfig, ...], ...], windows: int,
                     warmup_s: float, window_s: float) -> None:
    clients: tuple[tuple[Client, ...], ...] = tuple(
        tuple(config.open_client(side.pool) for config in configs)
        for side, configs in zip(sides, replicas, strict=True)
    )
    summaries = (sides[0].summarizer, sides[1].summarizer)
    state = _Windows()
    loop = asyncio.get_running_loop()
    counter = itertools.count()

    async def worker(first: int) -> None:
        order = (first, 1 - first)
        while not state.stopping:
            for side in order:
                index = next(counter)
                window = state.current
                # In a window, its process of each side (the pairs rotate); warming up, all in turn.
                turn = window[side].index if window is not None else index // 2
                if window is not None:
                    window[side].sent += 1
                t0 = loop.time()
                ok, status = await clients[side][turn % len(clients[side])].send(index)
                state.record(side, loop.time() - t0, ok, status)
            order = (order[1], order[0])

    tasks = [loop.create_task(worker(i % 2)) for i in range(sides[0].config.concurrency)]
    try:
        await asyncio.sleep(warmup_s)
        await asyncio.gather(*(asyncio.to_thread(s.prime) for s in summaries))
        origin = start = loop.time()
        grid = WindowGrid(origin, window_s)
        state.current = _records(0, 0.0)
        cpu0 = time.thread_time()
        for index in range(windows):
            end, _ = grid.end_of(index, start)
            await asyncio.sleep(max(0.0, end - loop.time()))
            finished = state.current
            assert finished is not None
            now, cpu = loop.time(), time.thread_time()
            # The next window opens before this one is summarized: no completion falls between.
            state.current = _records(index + 1, now - origin) if index + 1 < windows else None
            duration = now - start
            for record in finished:
                record.duration_s = duration
                record.loop_cpu = (cpu - cpu0) / duration if duration > 0 else 0.0
            start, cpu0 = now, cpu
            await asyncio.gather(
                *(asyncio.to_thread(s.finish, r) for s, r in zip(summaries, finished, strict=True))
            )
    finally:
        state.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for side in clients for c in side))
