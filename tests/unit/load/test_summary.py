"""Stability rule, server-latency deltas, and window -> Measurement summaries."""

from __future__ import annotations

import pytest

from pytest_tfserving.load import server_latency as sl
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.loops import WindowRecord
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.summary import StabilityRule, Summarizer


def _window(p50: float, count: int = 10, errors: int = 0) -> WindowSummary:
    return WindowSummary(
        start_s=0,
        duration_s=1,
        count=count,
        errors=errors,
        p50_ms=p50,
        p90_ms=p50,
        p95_ms=p50,
        p99_ms=p50,
        max_ms=p50,
        mean_ms=p50,
        rps=count - errors,
    )


def test_stability_needs_min_windows_and_a_tight_tail() -> None:
    rule = StabilityRule(min_windows=4, max_windows=10, last=3, tolerance=0.10)
    assert not rule.is_stable([_window(10), _window(10), _window(10)])
    assert rule.is_stable([_window(50), _window(10), _window(10.5), _window(10.9)])
    assert not rule.is_stable([_window(10), _window(10), _window(10), _window(11.5)])
    assert not rule.is_stable([_window(10), _window(10), _window(10), _window(10, count=5, errors=5)])
    with pytest.raises(ValueError, match="min_windows"):
        StabilityRule(min_windows=5, max_windows=3)


def test_server_quantile_interpolates_like_prometheus() -> None:
    earlier = ([(1000.0, 5.0), (2000.0, 5.0), (float("inf"), 5.0)], 5.0, 2500.0)
    later = ([(1000.0, 5.0), (2000.0, 15.0), (float("inf"), 15.0)], 15.0, 17500.0)
    window = sl.delta(later, earlier)
    assert window[1] == 10 and window[0][1] == (2000.0, 10.0)
    assert sl.quantile_ms(window, 0.5) == pytest.approx(1.5)  # half-way through the 1-2 ms bucket
    assert sl.mean_ms(window) == pytest.approx(1.5)
    assert sl.quantile_ms(sl.delta(earlier, earlier), 0.5) is None
    only_inf = ([(1000.0, 0.0), (float("inf"), 4.0)], 4.0, 9000.0)
    assert sl.quantile_ms(only_inf, 0.5) == 1.0


def test_summarizer_builds_a_measurement_that_round_trips() -> None:
    snapshots = iter(
        [
            ([(1000.0, 0.0), (float("inf"), 0.0)], 0.0, 0.0),
            ([(1000.0, 8.0), (float("inf"), 10.0)], 10.0, 9000.0),
            ([(1000.0, 16.0), (float("inf"), 20.0)], 20.0, 18000.0),
        ]
    )
    summ = Summarizer(
        protocol="grpc",
        mode="closed",
        concurrency=2,
        target_rps=None,
        rule=StabilityRule(min_windows=2, max_windows=3, last=2),
        server_latency=lambda: next(snapshots),
    )
    summ.prime()
    for k in range(2):
        hist = Histogram()
        hist.record_many([1.0, 2.0, 3.0, 4.0])
        summ.finish(
            WindowRecord(
                index=k,
                start_s=k,
                duration_s=1.0,
                histogram=hist,
                count=5,
                errors=1,
                errors_by_status={"UNAVAILABLE": 1},
                sent=5,
            )
        )
    assert summ.done
    m = summ.measurement()
    assert (m.count, m.errors, m.errors_by_status, m.rps) == (10, 2, {"UNAVAILABLE": 2}, 4.0)
    assert m.stable and len(m.windows) == 2 and m.windows[1].server_p50_ms == pytest.approx(0.625)
    assert m.server_mean_ms == pytest.approx(0.9)
    assert m.p50_ms == pytest.approx(2.0, rel=0.02) and m.max_ms == 4.0
    assert Measurement.from_dict(m.to_dict()) == m
    assert Histogram.from_dict(m.latency_histogram or {}).count == 8


def test_histogram_state_objects_are_accepted() -> None:
    from pytest_tfserving.metrics.prometheus import HistogramState

    state = HistogramState((1000.0, float("inf")), (3.0, 4.0), 5000.0, 4.0)
    assert sl.as_snapshot(state) == ([(1000.0, 3.0), (float("inf"), 4.0)], 4.0, 5000.0)
    with pytest.raises(TypeError, match="bounds, cumulative"):
        sl.as_snapshot(object())


@pytest.mark.parametrize(
    ("mode", "loop_cpu", "late", "capped", "saturated"),
    [
        ("closed", 0.95, 0, 0, True),
        ("closed", 0.5, 0, 0, False),
        ("open", 0.5, 20, 0, True),
        ("open", 0.5, 2, 0, False),
        ("open", 0.5, 20, 5, False),
    ],
)
def test_client_saturation_flag(mode: str, loop_cpu: float, late: int, capped: int, saturated: bool) -> None:
    summ = Summarizer(
        protocol="grpc", mode=mode, concurrency=None, target_rps=100.0, rule=StabilityRule(1, 1, 1)
    )
    hist = Histogram()
    hist.record(1.0)
    summ.finish(
        WindowRecord(
            index=0,
            start_s=0,
            duration_s=1.0,
            histogram=hist,
            count=1,
            sent=100,
            late_sends=late,
            capped_sends=capped,
            loop_cpu=loop_cpu,
        )
    )
    assert summ.measurement().client_saturated is saturated
