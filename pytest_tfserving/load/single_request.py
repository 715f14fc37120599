"""Single-request latency through pytest-benchmark: one blocking Predict per round.

The study's single-request figure is one request at a time, nothing else in flight: exactly what
pytest-benchmark's ``benchmark.pedantic`` times. Its statistics (median, mean, min, max, stddev, IQR,
outliers, ops) are carried into our Measurement as they are; we add only what it has no word for:
percentiles above the median, per-window summaries of consecutive rounds (the judge's evidence), and
server CPU / RSS / GPU and server-side latency, sampled between rounds in its untimed ``setup`` hook so
that no sample lands inside a timed round. The result is judged, baselined and reported like any other
measurement. No pytest import: the fixture comes in as a duck-typed object.
"""

from __future__ import annotations

import http.client
import itertools
import statistics
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from pytest_tfserving.load.clients import predict_url
from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.heap import frozen_heap
from pytest_tfserving.load.histogram import LatencyStatistics
from pytest_tfserving.load.loops import WindowRecord
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.load.wire import GRPC_METHOD_PATH
from pytest_tfserving.metrics.resources import ResourceSample


class RequestFailed(RuntimeError):
    """A single-request round got an error: the figure is a healthy server's latency, so it stops."""


class BenchmarkDisabled(RuntimeError):
    """pytest-benchmark ran the target once without timing it (disabled, or under xdist)."""


class BenchmarkFixture(Protocol):
    """What we use of pytest-benchmark's ``benchmark`` fixture."""

    disabled: bool
    stats: Any  # Metadata with ``.stats`` (a Stats: data, median, mean, ...) after a run, else None

    def pedantic(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        setup: Callable[[], Any] | None = None,
        teardown: Callable[..., Any] | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> Any: ...


class _Blocking:
    """One transport's blocking Predict; ``__call__`` is one round: the next request of the pool."""

    def __init__(self, config: LoadConfig, pool: RequestPool) -> None:
        self._pool = pool
        self._timeout_s = config.timeout_s
        self._target = config.target
        self._next = itertools.count()

    def __call__(self) -> None:
        self.send(next(self._next))

    def send(self, i: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _failed(self, i: int, why: str) -> RequestFailed:
        return RequestFailed(f"single request {i} to {self._target} failed: {why}")


class BlockingGrpc(_Blocking):
    def __init__(self, config: LoadConfig, pool: RequestPool) -> None:
        import grpc

        super().__init__(config, pool)
        self._grpc = grpc
        self._channel = grpc.insecure_channel(
            config.target,
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )
        self._call = self._channel.unary_unary(GRPC_METHOD_PATH[pool.method])

    def send(self, i: int) -> None:
        try:
            self._call(self._pool.body(i), timeout=self._timeout_s)
        except self._grpc.RpcError as exc:
            raise self._failed(i, f"{exc.code().name}: {exc.details()}") from None

    def close(self) -> None:
        self._channel.close()


class BlockingRest(_Blocking):
    def __init__(self, config: LoadConfig, pool: RequestPool) -> None:
        super().__init__(config, pool)
        url = urllib.parse.urlsplit(predict_url(config.target, config.model_name, pool.method))
        if url.scheme != "http":
            raise ValueError(f"single-request REST supports http:// targets, got {config.target!r}")
        self._path = url.path
        self._http = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80,
                                                timeout=config.timeout_s)

    def send(self, i: int) -> None:
        try:
            self._http.request("POST", self._path, self._pool.body(i), {"Content-Type": "application/json"})
            response = self._http.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._http.close()
            raise self._failed(i, repr(exc)) from None
        if response.status != 200:
            raise self._failed(i, f"HTTP {response.status}: {body[:200]!r}")

    def close(self) -> None:
        self._http.close()


class _Boundaries:
    """Samples server resources and server latency at window boundaries, from the untimed setup hook;
    replayed afterwards to a Summarizer in the order a live run would have taken them."""

    def __init__(self, config: LoadConfig, warmup_rounds: int, per_window: int, windows: int) -> None:
        self._config = config
        self._calls = 0
        # Before the first timed round and before the first round of each later window; the end of
        # the last window is sampled after the run (no setup call follows the last round).
        self._at = {warmup_rounds + k * per_window for k in range(windows)}
        self.samples: list[ResourceSample] = []
        self.latencies: list[Any] = []

    def setup(self) -> None:
        if self._calls in self._at:
            self.take()
        self._calls += 1

    def take(self) -> None:
        if self._config.sampler is not None:
            self.samples.append(self._config.sampler.sample())
        if self._config.server_latency is not None:
            self.latencies.append(self._config.server_latency())

    def replayed(self) -> LoadConfig:
        samples, latencies = iter(self.samples), iter(self.latencies)
        return replace(
            self._config,
            sampler=_Replay(samples) if self._config.sampler is not None else None,
            server_latency=(lambda: next(latencies)) if self._config.server_latency is not None else None,
        )


class _Replay:
    def __init__(self, samples: Any) -> None:
        self._samples = samples

    def sample(self) -> ResourceSample:
        sample: ResourceSample = next(self._samples)
        return sample

    def close(self) -> None:
        pass


def window_records(durations_s: Sequence[float], windows: int) -> list[WindowRecord]:
    """Consecutive rounds cut into ``windows`` windows of ``len // windows`` rounds, the remainder
    joining the last window (where the boundary samples put it)."""
    if windows < 1 or len(durations_s) < windows:
        raise ValueError(f"need at least one round per window: {len(durations_s)} rounds, {windows} windows")
    per_window = len(durations_s) // windows
    records, start = [], 0.0
    for k in range(windows):
        chunk = durations_s[k * per_window : (k + 1) * per_window if k < windows - 1 else None]
        record = WindowRecord(
            index=k, start_s=start, duration_s=sum(chunk), count=len(chunk), sent=len(chunk)
        )
        for d in chunk:
            record.histogram.record(d * 1000.0)
        start += record.duration_s
        records.append(record)
    return records


def carry_benchmark_stats(measurement: Measurement, stats: Any) -> Measurement:
    """Overlay pytest-benchmark's own statistics (seconds) on a Measurement built from its rounds:
    the median, mean and max are its, exact; p90/p95/p99 come from its raw rounds (it has none)."""
    data = list(stats.data)
    cuts = statistics.quantiles(data, n=100, method="inclusive") if len(data) > 1 else data * 99
    extra = dict(measurement.extra)
    extra.update(
        single_request=1.0,
        benchmark_rounds=float(stats.rounds),
        benchmark_min_ms=stats.min * 1000.0,
        benchmark_stddev_ms=stats.stddev * 1000.0,
        benchmark_iqr_ms=stats.iqr * 1000.0,
        benchmark_q1_ms=stats.q1 * 1000.0,
        benchmark_q3_ms=stats.q3 * 1000.0,
        benchmark_ops=float(stats.ops),
    )
    latency = LatencyStatistics(
        p50_ms=stats.median * 1000.0,
        p90_ms=cuts[89] * 1000.0,
        p95_ms=cuts[94] * 1000.0,
        p99_ms=cuts[98] * 1000.0,
        max_ms=stats.max * 1000.0,
        mean_ms=stats.mean * 1000.0,
    )
    return replace(measurement, **latency.fields(), rps=float(stats.ops), extra=extra)


def measure_single_requests(
    config: LoadConfig,
    benchmark: BenchmarkFixture,
    *,
    rounds: int = 100,
    warmup_rounds: int = 10,
    windows: int = 5,
) -> Measurement:
    """Time ``rounds`` single requests with ``benchmark.pedantic`` (after ``warmup_rounds`` untimed ones)
    and return them as a Measurement with ``windows`` windows of consecutive rounds."""
    if config.mode != "closed" or config.concurrency != 1:
        raise ValueError("single-request latency is one request at a time: closed loop, concurrency 1")
    if rounds < windows or windows < 1 or warmup_rounds < 0:
        raise ValueError(f"need rounds >= windows >= 1 and warmup_rounds >= 0, got {rounds}, {windows}, "
                         f"{warmup_rounds}")
    caller = (BlockingGrpc if config.protocol == "grpc" else BlockingRest)(config, config.pool())
    boundaries = _Boundaries(config, warmup_rounds, rounds // windows, windows)
    try:
        with frozen_heap():
            benchmark.pedantic(
                caller, setup=boundaries.setup, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1
            )
        boundaries.take()
    finally:
        caller.close()
    if benchmark.disabled or benchmark.stats is None:
        raise BenchmarkDisabled(
            "pytest-benchmark did not time the requests: it is disabled (--benchmark-disable, or under "
            "pytest-xdist, which disables it). Run the single-request test without -n / with "
            "--benchmark-enable, or measure it with perf.measure(server, concurrency=1)."
        )
    stats = benchmark.stats.stats
    records = window_records(list(stats.data), windows)
    replay = boundaries.replayed()
    summarizer = replay.summarizer(StabilityRule(min_windows=windows, max_windows=windows))
    summarizer.prime()
    for record in records:
        summarizer.finish(record)
    return carry_benchmark_stats(summarizer.measurement(), stats)

