"""A compact, mergeable latency histogram with bounded memory whatever the run length.

Log buckets (DDSketch-style): bucket ``i`` holds values in ``(gamma**(i-1), gamma**i]`` microseconds and
reports ``2 * gamma**i / (gamma + 1)``, so every percentile is within ``relative_error`` (1 % by default)
of a value actually recorded. Counts live in one numpy ``int64`` array (about 1,100 buckets from 1 us to
1,000 s, under 10 kB), so a ten-minute run at 10,000 req/s costs the same memory as a one-second run.
Mean and max are exact (running sum and max), not bucket estimates.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_RELATIVE_ERROR = 0.01
_MIN_US = 1.0  # values below 1 us land in the first bucket
_MAX_US = 1e9  # 1,000 s; larger values land in the last bucket (max stays exact)


@dataclass(frozen=True)
class LatencyStatistics:
    """The latency figures a window or a run reports (ms): what ``WindowSummary`` and ``Measurement``
    carry under the same field names."""

    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    def fields(self) -> dict[str, Any]:
        """As keyword arguments for ``WindowSummary``, ``Measurement`` or ``dataclasses.replace``."""
        return dataclasses.asdict(self)


class Histogram:
    """Latencies in milliseconds; ``record`` is O(1) and allocation-free."""

    __slots__ = (
        "_gamma",
        "_inv_log_gamma",
        "count",
        "counts",
        "max_ms",
        "min_ms",
        "relative_error",
        "sum_ms",
    )

    def __init__(self, relative_error: float = DEFAULT_RELATIVE_ERROR) -> None:
        if not 0.0 < relative_error < 0.5:
            raise ValueError(f"relative_error must be in (0, 0.5), got {relative_error!r}")
        self.relative_error = relative_error
        self._gamma = (1.0 + relative_error) / (1.0 - relative_error)
        self._inv_log_gamma = 1.0 / math.log(self._gamma)
        n_buckets = math.ceil(math.log(_MAX_US / _MIN_US) * self._inv_log_gamma) + 1
        self.counts: npt.NDArray[np.int64] = np.zeros(n_buckets, dtype=np.int64)
        self.count = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0
        self.min_ms = math.inf

    def _index(self, value_ms: float) -> int:
        us = value_ms * 1000.0
        if us <= _MIN_US:
            return 0
        return min(math.ceil(math.log(us / _MIN_US) * self._inv_log_gamma), len(self.counts) - 1)

    def record(self, value_ms: float) -> None:
        self.counts[self._index(value_ms)] += 1
        self.count += 1
        self.sum_ms += value_ms
        if value_ms > self.max_ms:
            self.max_ms = value_ms
        if value_ms < self.min_ms:
            self.min_ms = value_ms

    def record_many(self, values_ms: npt.ArrayLike) -> None:
        values = np.asarray(values_ms, dtype=np.float64).ravel()
        if values.size == 0:
            return
        us = np.maximum(values * 1000.0, _MIN_US)
        idx = np.ceil(np.log(us / _MIN_US) * self._inv_log_gamma).astype(np.int64)
        np.clip(idx, 0, len(self.counts) - 1, out=idx)
        self.counts += np.bincount(idx, minlength=len(self.counts))
        self.count += int(values.size)
        self.sum_ms += float(values.sum())
        self.max_ms = max(self.max_ms, float(values.max()))
        self.min_ms = min(self.min_ms, float(values.min()))

    def merge(self, other: Histogram) -> None:
        """Add ``other`` into this histogram (windows -> run, workers -> one window)."""
        if other.relative_error != self.relative_error:
            raise ValueError("cannot merge histograms with different relative_error")
        self.counts += other.counts
        self.count += other.count
        self.sum_ms += other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)
        self.min_ms = min(self.min_ms, other.min_ms)

    def copy(self) -> Histogram:
        clone = Histogram(self.relative_error)
        clone.merge(self)
        return clone

    @property
    def mean_ms(self) -> float:
        return self.sum_ms / self.count if self.count else 0.0

    def _value_of(self, index: int) -> float:
        if index == 0:
            return _MIN_US / 1000.0
        return 2.0 * _MIN_US * self._gamma**index / (self._gamma + 1.0) / 1000.0

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) in ms; 0.0 for an empty histogram."""
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"percentile must be in [0, 100], got {q!r}")
        if self.count == 0:
            return 0.0
        # nearest-rank: the smallest value with at least q % of values at or below it
        rank = max(1, math.ceil(q / 100.0 * self.count))
        if rank >= self.count:
            return self.max_ms  # exact, not a bucket estimate
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        return min(max(self._value_of(index), self.min_ms), self.max_ms)

    def percentiles(self, qs: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(self.percentile(q) for q in qs)

    def statistics(self) -> LatencyStatistics:
        """p50, p90, p95, p99 (bucket estimates), max and mean (exact): one window's or one run's."""
        p50, p90, p95, p99 = self.percentiles((50, 90, 95, 99))
        return LatencyStatistics(p50, p90, p95, p99, self.max_ms, self.mean_ms)

    def to_dict(self) -> dict[str, Any]:
        """Sparse JSON-safe form: ``buckets`` holds ``[index, count]`` pairs of non-empty buckets."""
        nonzero = np.flatnonzero(self.counts)
        return {
            "relative_error": self.relative_error,
            "min_us": _MIN_US,
            "count": self.count,
            "sum_ms": self.sum_ms,
            "max_ms": self.max_ms,
            "min_ms": self.min_ms if self.count else 0.0,
            "buckets": [[int(i), int(self.counts[i])] for i in nonzero],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        hist = cls(float(data["relative_error"]))
        for index, count in data["buckets"]:
            hist.counts[int(index)] = int(count)
        hist.count = int(data["count"])
        hist.sum_ms = float(data["sum_ms"])
        hist.max_ms = float(data["max_ms"])
        hist.min_ms = float(data["min_ms"]) if hist.count else math.inf
        if int(hist.counts.sum()) != hist.count:
            raise ValueError("histogram dict is inconsistent: bucket counts do not add up to 'count'")
        return hist

    def bucket_values(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """(representative value in ms, count) of non-empty buckets, e.g. for plots."""
        nonzero = np.flatnonzero(self.counts)
        values = np.array([self._value_of(int(i)) for i in nonzero], dtype=np.float64)
        return values, self.counts[nonzero].copy()
