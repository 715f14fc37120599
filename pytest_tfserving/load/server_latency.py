"""Server-side latency per window from a cumulative (Prometheus-style) histogram, by differences.

The runner takes a ``ServerLatencySource``: a callable returning the server's cumulative latency
histogram *now* as ``(buckets, count, sum_us)`` where ``buckets`` is a sequence of
``(upper_bound_us, cumulative_count)`` in increasing bound order (the last bound may be ``inf``), as TF
Serving's ``:tensorflow:serving:request_latency`` exposes it (microseconds). Calling it at each window
boundary and subtracting gives that window's server-side distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

ServerLatencySnapshot = tuple[Sequence[tuple[float, float]], float, float]
# The callable may also return an object with ``bounds``, ``cumulative``, ``count`` and ``sum``
# attributes, such as metrics.prometheus.HistogramState (``PrometheusScraper(...).scrape``).
ServerLatencySource = Callable[[], Any]


def as_snapshot(value: Any) -> ServerLatencySnapshot:
    """Accept ``(buckets, count, sum_us)`` or a HistogramState-like object."""
    if isinstance(value, tuple) and len(value) == 3:
        buckets, count, sum_us = value
        return [(float(b), float(c)) for b, c in buckets], float(count), float(sum_us)
    try:
        buckets = list(zip(value.bounds, value.cumulative, strict=True))
        return [(float(b), float(c)) for b, c in buckets], float(value.count), float(value.sum)
    except AttributeError as exc:
        raise TypeError(
            "server_latency must return (buckets, count, sum_us) or an object with bounds, cumulative, "
            f"count and sum (like metrics.prometheus.HistogramState); got {type(value).__name__}"
        ) from exc


def delta(later: ServerLatencySnapshot, earlier: ServerLatencySnapshot) -> ServerLatencySnapshot:
    """``later - earlier``; a bucket missing from ``earlier`` counts as zero there."""
    before = dict(earlier[0])
    buckets = [(bound, cum - before.get(bound, 0.0)) for bound, cum in later[0]]
    return buckets, later[1] - earlier[1], later[2] - earlier[2]


def quantile_ms(snapshot: ServerLatencySnapshot, q: float) -> float | None:
    """The q-quantile (0..1) in ms, interpolating linearly inside a bucket as Prometheus'
    ``histogram_quantile`` does; None when the snapshot holds no requests."""
    buckets, count, _ = snapshot
    if count <= 0 or not buckets:
        return None
    rank = q * count
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank and cumulative > below:
            if math.isinf(bound):
                return lower / 1000.0  # the open-ended bucket: its lower edge is all we know
            fraction = (rank - below) / (cumulative - below)
            return (lower + (bound - lower) * fraction) / 1000.0
        lower, below = bound, cumulative
    return lower / 1000.0


def mean_ms(snapshot: ServerLatencySnapshot) -> float | None:
    _, count, sum_us = snapshot
    return sum_us / count / 1000.0 if count > 0 else None
