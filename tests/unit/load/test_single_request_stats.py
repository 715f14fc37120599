"""pytest-benchmark's statistics carried into a Measurement; its rounds cut into windows."""

from __future__ import annotations

import pytest
from pytest_benchmark.stats import Stats

from pytest_tfserving.load.single_request import carry_benchmark_stats, window_records
from pytest_tfserving.load.summary import StabilityRule, Summarizer

ROUNDS = [0.010, 0.012, 0.011, 0.013, 0.030, 0.011, 0.012, 0.010, 0.014, 0.011, 0.050]


def test_rounds_are_cut_into_consecutive_windows_with_the_remainder_last() -> None:
    records = window_records(ROUNDS, 3)
    assert [r.count for r in records] == [3, 3, 5]
    assert [r.duration_s for r in records] == pytest.approx([0.033, 0.054, 0.097])
    assert [r.start_s for r in records] == pytest.approx([0.0, 0.033, 0.087])
    assert records[2].histogram.max_ms == pytest.approx(50.0)
    with pytest.raises(ValueError, match="at least one round per window"):
        window_records(ROUNDS[:2], 3)


def test_its_median_mean_and_spread_are_carried_as_they_are() -> None:
    stats = Stats()
    for d in ROUNDS:
        stats.update(d)
    summarizer = Summarizer(protocol="grpc", mode="closed", concurrency=1, target_rps=None,
                            rule=StabilityRule(3, 3))
    for record in window_records(ROUNDS, 3):
        summarizer.finish(record)
    m = carry_benchmark_stats(summarizer.measurement(), stats)
    assert m.p50_ms == pytest.approx(stats.median * 1000) == pytest.approx(12.0)
    assert m.mean_ms == pytest.approx(stats.mean * 1000) and m.max_ms == pytest.approx(50.0)
    assert m.rps == pytest.approx(stats.ops) == pytest.approx(len(ROUNDS) / sum(ROUNDS))
    assert m.extra["benchmark_iqr_ms"] == pytest.approx(stats.iqr * 1000)
    assert m.extra["benchmark_rounds"] == len(ROUNDS) and m.count == len(ROUNDS)
    assert m.p50_ms <= m.p90_ms <= m.p95_ms <= m.p99_ms <= m.max_ms
    assert m.p90_ms == pytest.approx(30.0)  # inclusive quantiles of the raw rounds
