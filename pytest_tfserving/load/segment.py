"""One stretch of load on an event loop, its windows summarized as they finish; and the ``Side`` of
a paired run. Shared by the single-server runner and the interleaved A/B runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from pytest_tfserving.load.clients import Client
from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.loops import LoopPlan, WindowRecord, run_windows
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.results import WindowSummary
from pytest_tfserving.load.summary import StabilityRule, Summarizer

Progress = Callable[[WindowSummary], None]


@dataclass(frozen=True)
class Side:
    """One server of a paired run: how to load it, its requests, and the summarizer of its windows."""

    config: LoadConfig
    pool: RequestPool
    summarizer: Summarizer

    @classmethod
    def prepare(cls, config: LoadConfig, rule: StabilityRule, extra: dict[str, float]) -> Side:
        """Fetch the signature and build the requests before any load starts."""
        return cls(config, config.pool(), config.summarizer(rule, extra=extra))


async def run_segment(
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
