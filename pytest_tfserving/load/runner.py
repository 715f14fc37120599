"""Synchronous entry point for one server: ``measure(config)`` loads it until the stability rule is met.

It runs its own asyncio loop, so a pytest fixture or a script can call it directly. Payloads are built
once from the model's signature before any load starts. Two servers: ``interleaved`` and
``alternating``.
"""

from __future__ import annotations

from dataclasses import replace

from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.locust_engine import LocustOptions, measure_with_locust
from pytest_tfserving.load.loops import LoopPlan
from pytest_tfserving.load.measured_run import run_measured
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.segment import Progress, run_segment
from pytest_tfserving.load.summary import StabilityRule, Summarizer
from pytest_tfserving.load.workers import measure_with_workers

__all__ = ["ENGINES", "LoadConfig", "LocustOptions", "Progress", "measure"]

ENGINES = ("native", "locust")  # native: our asyncio generator (default); locust: Locust master + workers


def measure(
    config: LoadConfig,
    *,
    warmup_s: float = 2.0,
    window_s: float = 1.0,
    rule: StabilityRule | None = None,
    max_requests: int | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    seed: int = 0,
    engine: str = "native",
    locust: LocustOptions | None = None,
) -> Measurement:
    """Load ``config``'s server until ``rule`` is met (or its ``max_windows``) and summarize the run.

    ``config.sampler.sample()`` runs once at the start of measurement and once per window (server
    CPU/RSS/GPU); ``config.server_latency()`` likewise, for the server-side p50 per window.
    ``progress`` gets each window's summary as it finishes. ``workers > 1`` splits the load over that
    many spawned processes; ``max_requests`` ends the run after that many measured requests.
    ``engine="locust"`` drives the load with Locust's master and ``workers`` Locust workers instead
    (``locust`` for an external fleet's options; ``load.locust_engine``).
    """
    rule = rule or StabilityRule()
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if engine == "locust":
        return _measure_with_locust(config, warmup_s, window_s, rule, max_requests, progress, workers, locust)
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
        measure_with_workers(config, pool, plan, summarizer, progress, workers)
    return summarizer.measurement()


def _measure_with_locust(
    config: LoadConfig,
    warmup_s: float,
    window_s: float,
    rule: StabilityRule,
    max_requests: int | None,
    progress: Progress | None,
    workers: int,
    options: LocustOptions | None,
) -> Measurement:
    if max_requests is not None:
        raise ValueError("max_requests is not supported with engine='locust'; leave it None")
    options = replace(options or LocustOptions(), workers=workers)
    pool = config.pool()
    plan = config.plan(
        warmup_s=warmup_s, window_s=window_s, max_windows=rule.max_windows, max_requests=None, seed=0
    )
    summarizer = config.summarizer(rule, extra={"workers": float(options.expected), "locust": 1.0})
    measure_with_locust(config, pool, plan, summarizer, progress, options)
    return summarizer.measurement()




async def _measure_in_process(
    config: LoadConfig, pool: RequestPool, plan: LoopPlan, summarizer: Summarizer, progress: Progress | None
) -> None:
    client = config.open_client(pool)
    try:
        await run_segment(client, plan, summarizer, progress, stop_when_done=True)
    finally:
        await client.close()
