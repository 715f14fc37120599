"""Closed-loop gRPC load through the Redis prediction cache, measured like ``perf.measure``.

The plugin's load runner opens its own client and has no hook to put the cache in front of it, so
this module drives the runner's public pieces (``LoadConfig.pool/plan/summarizer`` and
``loops.run_windows``) with a client that sends every request through ``AsyncCachedPredictor``.
The run is bounded by request count: one pass over the request order, so a repeat is a repeat of an
earlier request of this run and the hit ratio means what ``repeat_share`` says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.loops import WindowRecord, run_windows
from pytest_tfserving.load.measured_run import run_measured
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.load.wire import PREDICT_METHOD
from pytest_tfserving.services.prediction_cache import (
    AsyncCachedPredictor,
    BytesCodec,
    CacheStats,
    bytes_key_fn,
)

KeyFn = Callable[[bytes, str], str]


@dataclass(frozen=True)
class CacheRun:
    """The measurement (its ``extra`` holds the cache figures) and the exact expectation for it."""

    measurement: Measurement
    stats: CacheStats
    expected_hit_ratio: float  # repeats among the requests sent, given the request order


def expected_hits(order: np.ndarray, requests: int) -> int:
    """How many of the first ``requests`` requests repeat an earlier one (a perfect cache's hits)."""
    seen: set[int] = set()
    hits = 0
    for k in range(requests):
        body = int(order[k % len(order)])
        hits += body in seen
        seen.add(body)
    return hits


def miss_every_time(key_fn: KeyFn) -> KeyFn:
    """A broken key function (sabotage): a fresh key per call, so nothing is ever found again."""
    counter = iter(range(1 << 62))

    def key(body: bytes, prefix: str) -> str:
        return f"{key_fn(body, prefix)}:{next(counter)}"

    return key


class _CachedGrpcClient:
    """The load generator's Client protocol, with the cache between it and the server."""

    def __init__(self, config: LoadConfig, pool: RequestPool, redis_url: str, key_fn: KeyFn,
                 ttl_s: float) -> None:
        import grpc
        import redis.asyncio

        self._grpc = grpc
        self._pool = pool
        self._channel = grpc.aio.insecure_channel(
            config.target, options=[("grpc.max_receive_message_length", -1),
                                    ("grpc.max_send_message_length", -1)])
        call = self._channel.unary_unary(PREDICT_METHOD)  # raw bytes in, raw bytes out
        self._redis = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5.0)
        timeout_s = config.timeout_s
        self.cached: AsyncCachedPredictor[bytes, bytes] = AsyncCachedPredictor(
            lambda body: call(body, timeout=timeout_s), self._redis, ttl_s=ttl_s, key_fn=key_fn,
            codec=BytesCodec(),
        )

    async def send(self, i: int) -> tuple[bool, str]:
        try:
            await self.cached(self._pool.body(i))
        except self._grpc.aio.AioRpcError as exc:
            return False, exc.code().name
        return True, "OK"

    async def close(self) -> None:
        await self._channel.close()
        await self._redis.aclose()


def measure_cached(
    config: LoadConfig,
    redis_url: str,
    *,
    window_s: float,
    max_windows: int,
    ttl_s: float = 300.0,
    sabotage: bool = False,
) -> CacheRun:
    """Send one pass of the request order (closed loop, ``config.concurrency``) through the cache.

    No warm-up: the cache starts empty (flush it first) and every request counts. Stops after
    ``len(order)`` requests or ``max_windows`` windows, whichever comes first.
    """
    if config.protocol != "grpc":
        raise ValueError("the cached load speaks gRPC only; pass protocol='grpc'")
    pool = config.pool()
    key_fn: KeyFn = bytes_key_fn(config.model_name)
    if sabotage:
        key_fn = miss_every_time(key_fn)
    rule = StabilityRule(min_windows=max_windows, max_windows=max_windows)
    plan = config.plan(warmup_s=0.0, window_s=window_s, max_windows=max_windows,
                       max_requests=len(pool.order), seed=0)
    summarizer = config.summarizer(rule, extra={"repeat_share": config.payloads.repeat_share})

    async def run() -> CacheStats:
        client = _CachedGrpcClient(config, pool, redis_url, key_fn, ttl_s)
        windows: asyncio.Queue[WindowRecord | None] = asyncio.Queue()

        async def consume() -> None:
            await asyncio.to_thread(summarizer.prime)
            while (record := await windows.get()) is not None:
                await asyncio.to_thread(summarizer.finish, record)

        consumer = asyncio.get_running_loop().create_task(consume())
        try:
            start = asyncio.get_running_loop().time() + 0.05
            await run_windows(client, plan, start, emit=windows.put_nowait)
        finally:
            windows.put_nowait(None)
            await consumer
            await client.close()
        return client.cached.stats

    stats = run_measured(run())
    measurement = summarizer.measurement()
    measurement = replace(measurement, extra={**measurement.extra, **stats.as_extra()})
    expected = expected_hits(pool.order, stats.requests) / stats.requests if stats.requests else 0.0
    return CacheRun(measurement, stats, expected)


def describe(stats: CacheStats) -> str:
    """One line for assertion messages and logs."""
    hit = "-" if stats.mean_hit_ms is None else f"{stats.mean_hit_ms:.2f} ms"
    miss = "-" if stats.mean_miss_ms is None else f"{stats.mean_miss_ms:.2f} ms"
    return (f"{stats.requests} requests: {stats.hits} hits, {stats.misses} misses, "
            f"{stats.errors} Redis errors; hit ratio {stats.hit_ratio:.3f}; mean hit {hit}, mean miss {miss}")
