"""Closed-loop and open-loop load on one event loop, cut into fixed-length measurement windows.

Closed loop: ``concurrency`` coroutines each send, wait for the answer, send again (throughput at a
given number of requests in flight). Open loop: requests start on a fixed schedule (constant gaps or
Poisson arrivals) whatever the server does, and each latency is measured from the request's *scheduled*
start, so a slow server cannot hide its queueing delay by slowing the client down (no coordinated
omission). Requests are binned by completion time; completions during warm-up are dropped. The engine
knows nothing of stability or resources: it hands each finished window to ``emit`` and stops when
``stop_requested()`` says so, when ``max_windows`` are done, or after ``max_requests`` measured requests.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from pytest_tfserving.load.clients import Client
from pytest_tfserving.load.histogram import Histogram

LATE_SEND_S = 0.010  # an open-loop send this far behind its schedule counts as late
_TICK_S = 0.02  # how often the window ticker checks for a stop request
_GAP_CHUNK = 4096  # Poisson gaps are drawn in chunks to keep numpy out of the per-request path


@dataclass(frozen=True)
class LoopPlan:
    """What one load process does; in a multi-process run each worker gets its share."""

    mode: str  # "closed" | "open"
    concurrency: int = 1  # closed loop: requests in flight
    rate: float = 0.0  # open loop: scheduled requests per second (this process's share)
    arrival: str = "constant"  # open loop: "constant" | "poisson"
    warmup_s: float = 1.0
    window_s: float = 1.0
    max_windows: int = 10
    max_requests: int | None = None  # measured completions after which the run ends
    max_in_flight: int = 1_000  # open loop: beyond this the schedule waits (and that is reported)
    seed: int = 0
    index_offset: int = 0  # request i of this process sends pool entry offset + i * stride
    index_stride: int = 1
    schedule_offset_s: float = 0.0  # open loop: first send this long after start (staggers workers)

    def __post_init__(self) -> None:
        if self.mode not in ("closed", "open"):
            raise ValueError(f"mode must be 'closed' or 'open', got {self.mode!r}")
        if self.mode == "closed" and self.concurrency < 1:
            raise ValueError(f"closed loop needs concurrency >= 1, got {self.concurrency}")
        if self.mode == "open" and not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"open loop needs a rate > 0 requests/s, got {self.rate}")
        if self.arrival not in ("constant", "poisson"):
            raise ValueError(f"arrival must be 'constant' or 'poisson', got {self.arrival!r}")
        if self.window_s <= 0 or self.warmup_s < 0 or self.max_windows < 1:
            raise ValueError("window_s must be > 0, warmup_s >= 0 and max_windows >= 1")


@dataclass
class WindowRecord:
    """Raw result of one window in one process; mergeable across worker processes."""

    index: int
    start_s: float  # since measurement start
    duration_s: float = 0.0
    histogram: Histogram = field(default_factory=Histogram)  # latencies of successful requests
    count: int = 0
    errors: int = 0
    errors_by_status: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # requests started in this window
    late_sends: int = 0  # open loop: started more than LATE_SEND_S behind schedule
    max_send_lag_ms: float = 0.0  # open loop: worst lag of a start behind its schedule
    max_loop_lag_ms: float = 0.0  # worst oversleep of the window ticker (event-loop lag)
    loop_cpu: float = 0.0  # CPU of the event-loop thread as a fraction of one core
    capped_sends: int = 0  # open loop: starts that waited because max_in_flight was reached

    def add(self, latency_s: float, ok: bool, status: str) -> None:
        """One finished request: its latency when it succeeded, its status when it failed."""
        self.count += 1
        if ok:
            self.histogram.record(latency_s * 1000.0)
        else:
            self.errors += 1
            self.errors_by_status[status] = self.errors_by_status.get(status, 0) + 1

    def merge(self, other: WindowRecord) -> None:
        self.duration_s = max(self.duration_s, other.duration_s)
        self.histogram.merge(other.histogram)
        self.count += other.count
        self.errors += other.errors
        for status, n in other.errors_by_status.items():
            self.errors_by_status[status] = self.errors_by_status.get(status, 0) + n
        self.sent += other.sent
        self.late_sends += other.late_sends
        self.max_send_lag_ms = max(self.max_send_lag_ms, other.max_send_lag_ms)
        self.max_loop_lag_ms = max(self.max_loop_lag_ms, other.max_loop_lag_ms)
        self.loop_cpu = max(self.loop_cpu, other.loop_cpu)
        self.capped_sends += other.capped_sends


@dataclass
class WindowGrid:
    """Window ``k`` ends at ``origin + (k + 1) * length``: windows stay back to back and, across load
    processes, cover the same seconds. When the loop opens a window so late that less than half of it
    is left (it was stalled: a collector pass, a descheduled VM), the grid moves to the late start, so
    the window is measured whole instead of as a sliver with next to no requests in it."""

    origin: float
    length: float

    def end_of(self, index: int, began: float) -> tuple[float, float]:
        """When window ``index``, opened at ``began``, ends, and how late it opened (seconds)."""
        scheduled = self.origin + index * self.length
        if scheduled + self.length - began < self.length / 2:
            self.origin = began - index * self.length
        return self.origin + (index + 1) * self.length, max(0.0, began - scheduled)


def arrival_offsets(rate: float, arrival: str, seed: int) -> Iterator[float]:
    """Scheduled start of each request, in seconds after the loop's start: k / rate for "constant"
    (no float drift), cumulative exponential gaps for "poisson" (drawn in chunks, seeded)."""
    gap = 1.0 / rate
    if arrival == "constant":
        yield from (k * gap for k in itertools.count())
        return
    rng = np.random.default_rng(seed)
    t = 0.0
    while True:
        for g in rng.exponential(gap, _GAP_CHUNK).tolist():
            yield t
            t += g


class _Engine:
    def __init__(self, client: Client, plan: LoopPlan) -> None:
        self.client = client
        self.plan = plan
        self.loop = asyncio.get_running_loop()
        self.window: WindowRecord | None = None  # None during warm-up
        self.stopping = False
        self.next_index = 0
        self.measured = 0
        self.in_flight = 0
        self.slot_freed = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def _take_index(self) -> int:
        i = self.plan.index_offset + self.next_index * self.plan.index_stride
        self.next_index += 1
        return i

    def _record(self, latency_s: float, ok: bool, status: str) -> None:
        window = self.window
        if window is None:
            return
        window.add(latency_s, ok, status)
        self.measured += 1
        if self.plan.max_requests is not None and self.measured >= self.plan.max_requests:
            self.stopping = True

    async def _closed_worker(self) -> None:
        clock = self.loop.time
        while not self.stopping:
            index = self._take_index()
            if self.window is not None:
                self.window.sent += 1
            t0 = clock()
            ok, status = await self.client.send(index)
            self._record(clock() - t0, ok, status)

    async def _open_request(self, index: int, scheduled: float) -> None:
        try:
            ok, status = await self.client.send(index)
            self._record(self.loop.time() - scheduled, ok, status)
        finally:
            self.in_flight -= 1
            self.slot_freed.set()

    async def _open_scheduler(self, start_at: float) -> None:
        plan = self.plan
        offsets = arrival_offsets(plan.rate, plan.arrival, plan.seed)
        next_t = start_at + next(offsets)
        clock = self.loop.time
        while not self.stopping:
            now = clock()
            while next_t <= now and not self.stopping:
                if self.in_flight >= plan.max_in_flight:
                    if self.window is not None:
                        self.window.capped_sends += 1
                    self.slot_freed.clear()
                    await self.slot_freed.wait()
                    now = clock()
                    continue
                lag = now - next_t
                window = self.window
                if window is not None:
                    window.sent += 1
                    if lag > LATE_SEND_S:
                        window.late_sends += 1
                    window.max_send_lag_ms = max(window.max_send_lag_ms, lag * 1000.0)
                self.in_flight += 1
                task = self.loop.create_task(self._open_request(self._take_index(), next_t))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                next_t = start_at + next(offsets)
            await asyncio.sleep(max(0.0, next_t - clock()))

    async def _sleep_until(self, deadline: float, stop_requested: Callable[[], bool]) -> float:
        """Sleep in short ticks until ``deadline`` or a stop; returns the worst oversleep in ms."""
        worst = 0.0
        while not self.stopping and not stop_requested():
            now = self.loop.time()
            if now >= deadline:
                break
            target = min(deadline, now + _TICK_S)
            await asyncio.sleep(target - now)
            worst = max(worst, (self.loop.time() - target) * 1000.0)
        return worst

    async def run(
        self, start_at: float, emit: Callable[[WindowRecord], None], stop_requested: Callable[[], bool]
    ) -> None:
        plan = self.plan
        await self._sleep_until(start_at, stop_requested)
        if plan.mode == "closed":
            drivers = [self.loop.create_task(self._closed_worker()) for _ in range(plan.concurrency)]
        else:
            first = max(start_at, self.loop.time()) + plan.schedule_offset_s
            drivers = [self.loop.create_task(self._open_scheduler(first))]
        try:
            measure_start = start_at + plan.warmup_s
            grid = WindowGrid(measure_start, plan.window_s)
            await self._sleep_until(measure_start, stop_requested)
            for k in range(plan.max_windows):
                if self.stopping or stop_requested():
                    break
                began, cpu0 = self.loop.time(), time.thread_time()
                end, late_s = grid.end_of(k, began)
                self.window = WindowRecord(index=k, start_s=began - measure_start)
                lag = await self._sleep_until(end, stop_requested)
                window, ended = self.window, self.loop.time()
                if stop_requested() and ended < end:
                    break  # the run was ended from outside mid-window: drop the partial window
                window.duration_s = ended - began
                window.max_loop_lag_ms = max(lag, late_s * 1000.0)
                window.loop_cpu = (time.thread_time() - cpu0) / max(window.duration_s, 1e-9)
                self.window = WindowRecord(index=k + 1, start_s=ended - measure_start)
                emit(window)
        finally:
            self.stopping = True
            self.window = None
            self.slot_freed.set()
            pending = [*drivers, *self.tasks]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def run_windows(
    client: Client,
    plan: LoopPlan,
    start_at: float,
    emit: Callable[[WindowRecord], None],
    stop_requested: Callable[[], bool] = lambda: False,
) -> None:
    """Drive ``client`` per ``plan`` from ``start_at`` (``time.monotonic()`` clock), emitting each window.

    Warm-up runs from ``start_at`` for ``plan.warmup_s``; windows follow back to back. Requests still in
    flight when the run ends are cancelled and not counted.
    """
    await _Engine(client, plan).run(start_at, emit, stop_requested)
