"""Load worker processes for when one Python process cannot generate the load.

Each worker (spawned, so it starts clean of the parent's threads and TensorFlow) opens its own client,
runs its share of the plan on its own event loop from a common start time, and ships every window
record back over a queue; the parent (``measure_with_workers``) merges window k of all workers into
one window.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue as queue_module
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

from pytest_tfserving.load.clients import open_client
from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.loops import LoopPlan, WindowRecord, run_windows
from pytest_tfserving.load.measured_run import run_measured
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.segment import Progress
from pytest_tfserving.load.summary import Summarizer
from pytest_tfserving.load.window_merge import WindowMerger

_WORKER_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WorkerSpec:
    protocol: str
    target: str
    model_name: str
    pool: RequestPool
    plan: LoopPlan
    timeout_s: float
    connections: int
    channels: int


def worker_main(worker_id: int, spec: WorkerSpec, out: Any, go: Any, start_at: Any, stop: Any) -> None:
    """Entry point in the child: report "ready", wait for ``go``, run, report "done" (or "error")."""
    try:
        run_measured(_run(worker_id, spec, out, go, start_at, stop))
        out.put(("done", worker_id, None))
    except BaseException:  # the parent must hear about any failure, or it waits for nothing
        out.put(("error", worker_id, traceback.format_exc()))


async def _run(worker_id: int, spec: WorkerSpec, out: Any, go: Any, start_at: Any, stop: Any) -> None:
    client = open_client(
        spec.protocol,
        spec.target,
        spec.model_name,
        spec.pool,
        timeout_s=spec.timeout_s,
        connections=spec.connections,
        channels=spec.channels,
    )
    try:
        out.put(("ready", worker_id, None))
        while not go.wait(0):  # poll so this loop (and client) stay responsive
            if stop.is_set():
                return
            await asyncio.sleep(0.01)
        if time.monotonic() > start_at.value + spec.plan.warmup_s:
            raise RuntimeError("worker started after the measurement began; raise the start margin")
        await run_windows(
            client,
            spec.plan,
            start_at.value,
            emit=lambda record: out.put(("window", worker_id, record)),
            stop_requested=stop.is_set,
        )
    finally:
        await client.close()


def _split(total: int, parts: int, k: int) -> int:
    return total // parts + (1 if k < total % parts else 0)


def measure_with_workers(
    config: LoadConfig,
    pool: RequestPool,
    plan: LoopPlan,
    summarizer: Summarizer,
    progress: Progress | None,
    workers: int,
) -> None:
    """Run ``plan`` split over ``workers`` spawned processes, merging window k of all into one."""
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
    merger = WindowMerger(range(workers))
    finished: set[int] = set()
    while len(finished) < workers:
        kind, k, payload = _get(out, procs, time.monotonic() + plan.window_s * 3 + 30.0)
        if kind == "error":
            raise RuntimeError(f"load worker {k} failed:\n{payload}")
        if kind == "done":
            finished.add(k)
            continue
        assert isinstance(payload, WindowRecord)
        merged = merger.add(k, payload)
        if merged is None or stop.is_set():
            continue
        summary = summarizer.finish(merged)
        if progress is not None:
            progress(summary)
        if summarizer.done:
            stop.set()
