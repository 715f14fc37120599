"""Single-request latency through pytest-benchmark's real ``benchmark`` fixture, against the embedded
server: its statistics become the Measurement, windows and server-side figures are added."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tfserving.load import LoadConfig
from pytest_tfserving.load.single_request import RequestFailed, measure_single_requests
from pytest_tfserving.metrics.process import ProcessSampler
from pytest_tfserving.metrics.prometheus import PrometheusScraper
from tests.integration.load.load_servers import METRICS_PATH, MODEL, Server


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_benchmark_statistics_become_the_measurement(server: Server, benchmark: Any, protocol: str) -> None:
    scraper = PrometheusScraper(server.rest_url + METRICS_PATH, labels={"model_name": MODEL})
    config = LoadConfig(
        target=server.target(protocol),
        model_name=MODEL,
        protocol=protocol,
        sampler=ProcessSampler(server.pid),
        server_latency=scraper.scrape,
    )
    m = measure_single_requests(config, benchmark, rounds=63, warmup_rounds=5, windows=6)
    stats = benchmark.stats.stats
    assert stats.rounds == m.count == 63 and m.errors == 0
    assert m.p50_ms == stats.median * 1000 and m.mean_ms == stats.mean * 1000 and m.max_ms == stats.max * 1000
    assert m.extra["benchmark_stddev_ms"] == stats.stddev * 1000 and m.rps == stats.ops
    assert m.p50_ms <= m.p90_ms <= m.p95_ms <= m.p99_ms <= m.max_ms
    assert [w.count for w in m.windows] == [10, 10, 10, 10, 10, 13]  # the remainder joins the last
    assert sum(w.duration_s for w in m.windows) == pytest.approx(stats.total)
    # Sampled between rounds: server CPU per window and the server's own latency, below the client's.
    assert all(w.cpu_percent is not None and w.server_p50_ms is not None for w in m.windows)
    assert m.server_mean_ms is not None and 0 < m.server_mean_ms < m.mean_ms
    assert (m.mode, m.concurrency, m.extra["single_request"]) == ("closed", 1, 1.0)


@pytest.mark.parametrize(("protocol", "status"), [("grpc", "NOT_FOUND"), ("rest", "HTTP 404")])
def test_a_failed_request_stops_the_benchmark_with_its_status(
    server: Server, benchmark: Any, protocol: str, status: str
) -> None:
    from pytest_tfserving.load.wire import TensorSpec

    config = LoadConfig(
        target=server.target(protocol),
        model_name="no_such_model",
        protocol=protocol,
        signature={"images": TensorSpec("DT_FLOAT", (-1, 8, 8, 3))},
    )
    with pytest.raises(RequestFailed, match=status):
        measure_single_requests(config, benchmark, rounds=5, warmup_rounds=0, windows=1)


def test_more_than_one_in_flight_is_refused(server: Server) -> None:
    config = LoadConfig(target=server.grpc_target, model_name=MODEL, concurrency=2)
    with pytest.raises(ValueError, match="one request at a time"):
        measure_single_requests(config, None)  # type: ignore[arg-type]  # refused before it is used
