"""--ab-replicas at the load level: with several processes on a side, window i goes to process
i mod m of that side, in both pairings. Shown with a side whose second "process" is a genuinely
slower model: its windows, and only they, are slow. Real embedded servers over gRPC."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest

from pytest_tfserving.load import LoadConfig
from pytest_tfserving.load.alternating import measure_alternating
from pytest_tfserving.load.interleaved import measure_interleaved
from pytest_tfserving.load.results import Measurement
from tests.integration.load.load_servers import MODEL, Server, embedded_server, export_tiny


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("slow")
    export_tiny(base / "1", width=64, extra_dense_layers=8)
    with embedded_server(base, base / "slow.log") as running:
        yield running


def _slow_windows_are_the_second_process(fast: Measurement, rotated: Measurement) -> None:
    ratios = [b.p50_ms / a.p50_ms for a, b in zip(fast.windows, rotated.windows, strict=True)]
    on_fast, on_slow = ratios[0::2], ratios[1::2]
    # Medians: on a shared machine one interleaved window in a few is hit by a neighbour.
    assert statistics.median(on_slow) > 1.5 * statistics.median(on_fast), ratios
    assert statistics.median(on_fast) < 1.3, ratios


def test_alternating_pairs_rotate_over_the_processes(server: Server, slow: Server) -> None:
    fast = LoadConfig(server.grpc_target, MODEL)
    slower = LoadConfig(slow.grpc_target, MODEL)
    a, b = measure_alternating([fast, fast], [fast, slower], 8, warmup_s=0.5, window_s=0.4)
    assert len(a.windows) == len(b.windows) == 8
    _slow_windows_are_the_second_process(a, b)


def test_interleaved_rounds_rotate_over_the_processes(server: Server, slow: Server) -> None:
    fast = LoadConfig(server.grpc_target, MODEL)
    slower = LoadConfig(slow.grpc_target, MODEL)
    a, b = measure_interleaved(fast, [fast, slower], 8, warmup_s=0.3, window_s=0.3, rewarm_s=0.1)
    _slow_windows_are_the_second_process(a, b)


def test_a_side_without_processes_is_refused(server: Server) -> None:
    with pytest.raises(ValueError, match="at least one LoadConfig"):
        measure_alternating([], LoadConfig(server.grpc_target, MODEL), 1)
