"""measure_alternating: two servers in the same moments, one request in flight at a time.
Real embedded servers over gRPC and REST on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tfserving.load import LoadConfig
from pytest_tfserving.load.alternating import measure_alternating
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.wire import TensorSpec
from tests.integration.load.load_servers import MODEL, Server, embedded_server, export_tiny

SIGNATURE = {"images": TensorSpec("DT_FLOAT", (-1, 8, 8, 3))}


def _consistent(m: Measurement) -> None:
    assert m.count == sum(w.count for w in m.windows)
    assert m.errors == sum(w.errors for w in m.windows) == sum(m.errors_by_status.values())
    assert Histogram.from_dict(m.latency_histogram or {}).count == m.count - m.errors
    assert m.extra["alternating"] == 1.0


def test_both_sides_share_every_window(server: Server) -> None:
    a = LoadConfig(server.grpc_target, MODEL, protocol="grpc")
    b = LoadConfig(server.rest_url, MODEL, protocol="rest")
    ma, mb = measure_alternating(a, b, 4, warmup_s=0.3, window_s=0.4)
    assert (ma.protocol, mb.protocol) == ("grpc", "rest")
    assert len(ma.windows) == len(mb.windows) == 4
    for wa, wb in zip(ma.windows, mb.windows, strict=True):
        assert wa.start_s == wb.start_s and wa.duration_s == wb.duration_s
        assert abs(wa.count - wb.count) <= 2  # one worker: A B B A A B ..., a window may cut "A A"
        assert wa.count > 10
    for m in (ma, mb):
        _consistent(m)
        assert m.errors == 0


def test_errors_are_counted_on_their_own_side(server: Server) -> None:
    good = LoadConfig(server.grpc_target, MODEL)
    missing = LoadConfig(server.grpc_target, "no_such_model", signature=SIGNATURE)
    ma, mb = measure_alternating(good, missing, 2, warmup_s=0.2, window_s=0.3)
    assert ma.errors == 0 and ma.count > 0
    assert mb.errors == mb.count > 0 and set(mb.errors_by_status) == {"NOT_FOUND"}
    _consistent(mb)


def test_a_genuinely_slower_model_is_slower_in_every_window_pair(
    server: Server, tmp_path: Path
) -> None:
    slow_base = tmp_path / "slow"
    export_tiny(slow_base / "1", width=64, extra_dense_layers=8)
    with embedded_server(slow_base, tmp_path / "slow.log") as slow:
        ma, mb = measure_alternating(
            LoadConfig(server.grpc_target, MODEL), LoadConfig(slow.grpc_target, MODEL), 5,
            warmup_s=0.5, window_s=0.4,
        )
    assert all(b.p50_ms > a.p50_ms for a, b in zip(ma.windows, mb.windows, strict=True))


def test_configs_it_cannot_pair_are_refused(server: Server) -> None:
    closed = LoadConfig(server.grpc_target, MODEL)
    with pytest.raises(ValueError, match="measure_interleaved for open loop"):
        measure_alternating(closed, LoadConfig(server.grpc_target, MODEL, mode="open", rate=10.0), 1)
    with pytest.raises(ValueError, match="same concurrency"):
        measure_alternating(closed, LoadConfig(server.grpc_target, MODEL, concurrency=2), 1)
