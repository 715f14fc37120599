"""Load worker processes for when one Python process cannot generate the load.

Each worker (spawned, so it starts clean of the parent's threads and TensorFlow) opens its own client,
runs its share of the plan on its own event loop from a common start time, and ships every window
record back over a queue; the parent merges window k of all workers into one window.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass
from typing import Any

from pytest_tfserving.load.clients import open_client
from pytest_tfserving.load.loops import LoopPlan, run_windows
from pytest_tfserving.load.measured_run import run_measured
from pytest_tfserving.load.payloads import RequestPool


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
