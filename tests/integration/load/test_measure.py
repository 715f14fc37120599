"""measure() against the real embedded server: both protocols, both loops, errors, windows, workers."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from pytest_tfserving.load import LoadConfig, PayloadOptions, StabilityRule, measure, measure_interleaved
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.payloads import PayloadError, fetch_signature
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.wire import TensorSpec
from tests.integration.load.load_servers import METRICS_PATH, MODEL, Server

SIGNATURE = {"images": TensorSpec("DT_FLOAT", (-1, 8, 8, 3))}
FAST: dict[str, Any] = {"warmup_s": 0.5, "window_s": 0.5}


def _check_consistent(m: Measurement) -> None:
    assert m.count == sum(w.count for w in m.windows)
    assert m.errors == sum(w.errors for w in m.windows) == sum(m.errors_by_status.values())
    assert m.duration_s == pytest.approx(sum(w.duration_s for w in m.windows))
    assert m.rps == pytest.approx((m.count - m.errors) / m.duration_s)
    assert Histogram.from_dict(m.latency_histogram or {}).count == m.count - m.errors
    assert 0 < m.p50_ms <= m.p90_ms <= m.p99_ms <= m.max_ms
    assert Measurement.from_dict(m.to_dict()) == m


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_closed_loop(server: Server, protocol: str) -> None:
    seen: list[WindowSummary] = []
    m = measure(
        LoadConfig(server.target(protocol), MODEL, protocol=protocol, mode="closed", concurrency=3),
        rule=StabilityRule(min_windows=3, max_windows=4),
        progress=seen.append,
        **FAST,
    )
    _check_consistent(m)
    assert (m.protocol, m.mode, m.concurrency, m.target_rps) == (protocol, "closed", 3, None)
    assert m.errors == 0 and m.count > 20
    assert 3 <= len(m.windows) <= 4 and list(m.windows) == seen
    assert m.stable == StabilityRule(3, 4).is_stable(list(m.windows))
    assert m.stable or len(m.windows) == 4


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_open_loop_achieves_the_target_rate(server: Server, protocol: str) -> None:
    m = measure(
        LoadConfig(server.target(protocol), MODEL, protocol=protocol, mode="open", rate=40),
        rule=StabilityRule(min_windows=4, max_windows=4),
        warmup_s=0.5,
        window_s=1.0,
    )
    _check_consistent(m)
    assert (m.mode, m.concurrency, m.target_rps) == ("open", None, 40)
    assert m.errors == 0
    assert m.extra["sent_rps"] == pytest.approx(40, rel=0.1)
    assert m.rps == pytest.approx(40, rel=0.25)  # completions: binned by completion time


@pytest.mark.parametrize(("protocol", "status"), [("grpc", "NOT_FOUND"), ("rest", "404")])
def test_wrong_model_is_counted_as_errors_by_status(server: Server, protocol: str, status: str) -> None:
    m = measure(
        LoadConfig(
            server.target(protocol), "no_such_model", protocol=protocol, signature=SIGNATURE, concurrency=2
        ),
        rule=StabilityRule(min_windows=2, max_windows=2),
        **FAST,
    )
    assert m.count > 0 and m.errors == m.count and m.errors_by_status == {status: m.count}
    assert m.rps == 0.0 and not m.stable


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_metadata_of_a_missing_model_is_a_clear_error(server: Server, protocol: str) -> None:
    with pytest.raises(PayloadError, match="no_such_model"):
        fetch_signature(server.target(protocol), protocol, "no_such_model")
    assert fetch_signature(server.target(protocol), protocol, MODEL) == SIGNATURE


def test_unreachable_server_is_counted_not_raised() -> None:
    m = measure(
        LoadConfig("http://127.0.0.1:9", MODEL, protocol="rest", signature=SIGNATURE),
        rule=StabilityRule(min_windows=1, max_windows=1),
        warmup_s=0.1,
        window_s=0.3,
    )
    assert m.errors == m.count > 0 and set(m.errors_by_status) == {"connection"}


def test_stability_rule_stops_early_when_met(server: Server) -> None:
    m = measure(
        LoadConfig(server.grpc_target, MODEL),
        rule=StabilityRule(min_windows=3, max_windows=20, tolerance=100.0),
        **FAST,
    )
    assert m.stable and len(m.windows) == 3


def test_max_requests_bounds_the_run(server: Server) -> None:
    m = measure(
        LoadConfig(server.grpc_target, MODEL, concurrency=2),
        max_requests=30,
        rule=StabilityRule(min_windows=10, max_windows=10),
        **FAST,
    )
    assert 30 <= m.count <= 32 and len(m.windows) < 10


def test_repeat_share_and_user_payloads(server: Server) -> None:
    import numpy as np

    given = [{"images": np.full((1, 8, 8, 3), v, np.float32)} for v in (0.1, 0.2)]
    m = measure(
        LoadConfig(
            server.rest_url, MODEL, protocol="rest", payloads=PayloadOptions(inputs=given, repeat_share=0.5)
        ),
        rule=StabilityRule(min_windows=1, max_windows=1),
        **FAST,
    )
    assert m.errors == 0 and m.count > 0


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_two_worker_processes(server: Server, mode: str) -> None:
    m = measure(
        LoadConfig(server.grpc_target, MODEL, mode=mode, concurrency=4, rate=60),
        workers=2,
        rule=StabilityRule(min_windows=3, max_windows=3),
        warmup_s=0.5,
        window_s=1.0,
    )
    _check_consistent(m)
    assert m.errors == 0 and len(m.windows) == 3 and m.extra["workers"] == 2
    if mode == "open":
        assert m.extra["sent_rps"] == pytest.approx(60, rel=0.1)


def test_server_resources_and_server_latency(server: Server) -> None:
    from pytest_tfserving.metrics.process import ProcessSampler
    from pytest_tfserving.metrics.prometheus import PrometheusScraper

    scraper = PrometheusScraper(server.rest_url + METRICS_PATH, labels={"model_name": MODEL})
    config = LoadConfig(
        server.grpc_target,
        MODEL,
        concurrency=2,
        sampler=ProcessSampler(server.pid),
        server_latency=scraper.scrape,
    )
    m = measure(config, rule=StabilityRule(min_windows=3, max_windows=3), **FAST)
    assert all(w.cpu_percent is not None and w.rss_mb and w.rss_mb > 50 for w in m.windows)
    assert m.cpu_percent is not None and m.cpu_percent > 0
    assert m.server_p50_ms is not None and 0 < m.server_p50_ms < m.p50_ms * 1.5
    assert m.server_mean_ms is not None and all(w.server_p50_ms is not None for w in m.windows)


def test_interleaved_windows_alternate(server: Server) -> None:
    a = LoadConfig(server.grpc_target, MODEL, protocol="grpc", concurrency=2)
    b = LoadConfig(server.rest_url, MODEL, protocol="rest", concurrency=2)
    order: list[str] = []
    ma, mb = measure_interleaved(
        a, b, rounds=3, warmup_s=0.3, window_s=0.4, rewarm_s=0.1, progress=lambda side, w: order.append(side)
    )
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert len(ma.windows) == len(mb.windows) == 3
    assert ma.protocol == "grpc" and mb.protocol == "rest" and ma.errors == mb.errors == 0
    assert ma.windows[0].start_s < mb.windows[0].start_s < mb.windows[1].start_s < ma.windows[1].start_s


class _MillisecondClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock ticks in whole milliseconds, as uvloop's (libuv's) does."""

    def time(self) -> float:
        return math.floor(super().time() * 1000.0) / 1000.0


class _MillisecondClockPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _MillisecondClockLoop()


def test_an_installed_event_loop_policy_does_not_round_latencies(server: Server) -> None:
    asyncio.set_event_loop_policy(_MillisecondClockPolicy())  # as uvloop.install() would
    try:
        m = measure(
            LoadConfig(server.grpc_target, MODEL), rule=StabilityRule(min_windows=2, max_windows=2), **FAST
        )
    finally:
        asyncio.set_event_loop_policy(None)
    values, _ = Histogram.from_dict(m.latency_histogram or {}).bucket_values()
    off_the_millisecond = [v for v in values if abs(v - round(v)) > 0.03 * v]
    assert len(off_the_millisecond) >= 3, f"latencies look rounded to whole ms: {values}"
