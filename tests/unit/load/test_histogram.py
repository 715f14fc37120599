"""Histogram accuracy against numpy on known data, merging, and the dict round trip."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_tfserving.load.histogram import Histogram

QS = (1, 25, 50, 90, 95, 99, 99.9, 100)


def _lognormal(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(mean=1.0, sigma=0.8, size=n)  # ms, ~0.1 .. 100 ms


@pytest.mark.parametrize("seed", [0, 1])
def test_percentiles_within_one_percent_of_numpy(seed: int) -> None:
    values = _lognormal(50_000, seed)
    hist = Histogram()
    for v in values[:1000]:
        hist.record(float(v))
    hist.record_many(values[1000:])
    for q in QS:
        exact = float(np.percentile(values, q, method="inverted_cdf"))
        assert hist.percentile(q) == pytest.approx(exact, rel=0.0101), q
    assert hist.count == values.size
    assert hist.mean_ms == pytest.approx(values.mean(), rel=1e-9)
    assert hist.max_ms == values.max()
    assert hist.percentile(100) == values.max()


def test_record_and_record_many_agree() -> None:
    values = _lognormal(2000, 3)
    one, many = Histogram(), Histogram()
    for v in values:
        one.record(float(v))
    many.record_many(values)
    assert np.array_equal(one.counts, many.counts)


def test_merge_equals_recording_everything_in_one() -> None:
    values = _lognormal(10_000, 4)
    whole, left, right = Histogram(), Histogram(), Histogram()
    whole.record_many(values)
    left.record_many(values[:3000])
    right.record_many(values[3000:])
    left.merge(right)
    assert np.array_equal(left.counts, whole.counts)
    assert left.count == whole.count and left.max_ms == whole.max_ms and left.min_ms == whole.min_ms
    assert left.percentiles(QS) == whole.percentiles(QS)


def test_dict_round_trip_is_sparse_and_exact() -> None:
    hist = Histogram()
    hist.record_many(_lognormal(5000, 5))
    data = hist.to_dict()
    assert len(data["buckets"]) < 1000
    back = Histogram.from_dict(data)
    assert np.array_equal(back.counts, hist.counts)
    assert back.percentiles(QS) == hist.percentiles(QS)
    assert (back.mean_ms, back.max_ms) == (hist.mean_ms, hist.max_ms)


def test_memory_does_not_grow_with_count() -> None:
    hist = Histogram()
    size = hist.counts.nbytes
    hist.record_many(_lognormal(200_000, 6))
    assert hist.counts.nbytes == size < 10_000


def test_extremes_and_empty() -> None:
    hist = Histogram()
    assert hist.percentile(50) == 0.0 and hist.mean_ms == 0.0
    hist.record(0.0)
    hist.record(5_000_000.0)  # beyond the top bucket: clamped, max stays exact
    assert hist.max_ms == 5_000_000.0
    assert hist.percentile(100) == 5_000_000.0
    assert hist.percentile(1) <= 0.001  # the first bucket holds everything up to 1 us


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="percentile"):
        Histogram().percentile(101)
    with pytest.raises(ValueError, match="relative_error"):
        Histogram(0.7)
    with pytest.raises(ValueError, match="different relative_error"):
        Histogram(0.01).merge(Histogram(0.02))
    data = Histogram().to_dict()
    data["count"] = 3
    with pytest.raises(ValueError, match="inconsistent"):
        Histogram.from_dict(data)


def test_statistics_are_the_percentiles_max_and_mean_every_summary_reports() -> None:
    values = _lognormal(5_000, 2)
    hist = Histogram()
    hist.record_many(values)
    stats = hist.statistics()
    assert (stats.p50_ms, stats.p90_ms, stats.p95_ms, stats.p99_ms) == hist.percentiles((50, 90, 95, 99))
    assert (stats.max_ms, stats.mean_ms) == (hist.max_ms, hist.mean_ms)
    assert stats.fields() == {
        "p50_ms": stats.p50_ms,
        "p90_ms": stats.p90_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
        "max_ms": stats.max_ms,
        "mean_ms": stats.mean_ms,
    }
    assert Histogram().statistics().fields() == dict.fromkeys(stats.fields(), 0.0)
