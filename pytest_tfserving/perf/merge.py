"""One measurement from a run and its extension: what "measure more windows" hands the judge."""

from __future__ import annotations

import dataclasses

from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.results import Measurement


def merge_measurements(first: Measurement, more: Measurement) -> Measurement:
    """One measurement from two consecutive runs on the same server (an extension of ``first``)."""
    hist = Histogram.from_dict(first.latency_histogram) if first.latency_histogram else None
    if hist is not None and more.latency_histogram:
        hist.merge(Histogram.from_dict(more.latency_histogram))
    count, errors = first.count + more.count, first.errors + more.errors
    duration = first.duration_s + more.duration_s
    statuses = dict(first.errors_by_status)
    for status, n in more.errors_by_status.items():
        statuses[status] = statuses.get(status, 0) + n
    offset = first.duration_s
    windows = first.windows + tuple(dataclasses.replace(w, start_s=w.start_s + offset) for w in more.windows)

    def weighted(a: float | None, b: float | None) -> float | None:
        if a is None or b is None:
            return a if b is None else b
        return (a * first.duration_s + b * more.duration_s) / duration

    def largest(a: float | None, b: float | None) -> float | None:
        return max(v for v in (a, b) if v is not None) if (a, b) != (None, None) else None

    # The union's percentiles and mean from the merged histogram; without one to merge, the first
    # run's figures stay (the windows still carry both runs).
    latency = hist.statistics().fields() if hist is not None else {}
    latency["max_ms"] = max(first.max_ms, more.max_ms)
    return dataclasses.replace(
        first,
        **latency,
        duration_s=duration,
        count=count,
        errors=errors,
        errors_by_status=statuses,
        rps=(count - errors) / duration if duration else 0.0,
        windows=windows,
        stable=more.stable,
        cpu_percent=weighted(first.cpu_percent, more.cpu_percent),
        rss_mb=largest(first.rss_mb, more.rss_mb),
        gpu_util_percent=weighted(first.gpu_util_percent, more.gpu_util_percent),
        gpu_memory_mb=largest(first.gpu_memory_mb, more.gpu_memory_mb),
        # Server-side p50 of the union is not derivable from two p50s: a duration-weighted estimate.
        server_p50_ms=weighted(first.server_p50_ms, more.server_p50_ms),
        server_mean_ms=weighted(first.server_mean_ms, more.server_mean_ms),
        client_saturated=first.client_saturated or more.client_saturated,
        latency_histogram=hist.to_dict() if hist is not None else first.latency_histogram,
    )
