"""Measurements built from window values, so the gate is tested on known distributions.

A module with a unique name (not conftest) so tests can import it without clashing with other areas.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pytest_tfserving.load.results import Measurement, WindowSummary

MakeMeasurement = Callable[..., Measurement]


def build_measurement(p50s: Sequence[float], rps: Sequence[float] | None = None, *, errors: int = 0,
                      window_s: float = 2.0, **fields: Any) -> Measurement:
    """Windows with the given p50s (other percentiles scaled from them) and totals to match."""
    rps = list(rps) if rps is not None else [1000.0 / p for p in p50s]
    windows = tuple(
        WindowSummary(start_s=i * window_s, duration_s=window_s, count=int(r * window_s), errors=0,
                      p50_ms=p, p90_ms=p * 1.3, p95_ms=p * 1.5, p99_ms=p * 2.0, max_ms=p * 3.0,
                      mean_ms=p * 1.1, rps=r, cpu_percent=150.0, rss_mb=300.0)
        for i, (p, r) in enumerate(zip(p50s, rps, strict=True))
    )
    count = sum(w.count for w in windows)
    med = float(np.median(p50s))
    base: dict[str, Any] = {
        "protocol": "grpc", "mode": "closed", "concurrency": 4, "target_rps": None,
        "duration_s": window_s * len(windows), "count": count + errors, "errors": errors,
        "errors_by_status": {"UNAVAILABLE": errors} if errors else {},
        "p50_ms": med, "p90_ms": med * 1.3, "p95_ms": med * 1.5, "p99_ms": med * 2.0,
        "max_ms": med * 3.0, "mean_ms": med * 1.1, "rps": float(np.median(rps)), "windows": windows,
        "stable": True, "cpu_percent": 150.0, "rss_mb": 300.0,
    }
    base.update(fields)
    return Measurement(**base)


def lognormal_p50s(seed: int, n: int = 10, median: float = 2.0, cv: float = 0.03,
                   shift: float = 0.0) -> list[float]:
    """Window p50s with a known median and spread: what a steady server gives run after run."""
    rng = np.random.default_rng(seed)
    return list(median * (1 + shift) * np.exp(rng.normal(0.0, cv, n)))



FINGERPRINT = {
    "backend": "embedded", "server": "tensorflow 2.21.0", "cpu_model": "Test CPU @ 2.0GHz",
    "logical_cores": 2, "gpus": [], "gpu_driver": None, "models": {"tiny/fp32": "sha256:abc"},
    "server_flags": ["--rest_api_num_threads=4"], "python": "3.11.2 (cpython)", "platform": "Linux x86_64",
}
