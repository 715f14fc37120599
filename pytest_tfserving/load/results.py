"""What one measurement produced: per-window summaries plus the whole run. No pytest, no I/O.

Produced by ``load`` (+ ``metrics``), consumed by ``judge``, ``baselines`` and ``report``.
All latencies are milliseconds; rates are requests per second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Metrics the judge and baselines know, with the direction that is better.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {"p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "error_rate",
     "cpu_percent", "rss_mb", "gpu_util_percent", "gpu_memory_mb", "server_p50_ms"}
)
HIGHER_IS_BETTER: frozenset[str] = frozenset({"rps", "cache_hit_ratio"})


@dataclass(frozen=True)
class WindowSummary:
    """One measurement window (e.g. 2 s): the unit of statistical evidence for the judge."""

    start_s: float  # seconds since measurement start
    duration_s: float
    count: int  # completed requests (ok + errors)
    errors: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    rps: float  # successful requests / duration_s
    cpu_percent: float | None = None  # server CPU, mean over the window
    rss_mb: float | None = None  # server RSS, max over the window
    server_p50_ms: float | None = None  # from Prometheus request_latency deltas

    def metric(self, name: str) -> float | None:
        if name == "error_rate":
            return self.errors / self.count if self.count else 0.0
        value = getattr(self, name, None)
        return None if value is None else float(value)


@dataclass(frozen=True)
class Measurement:
    """A whole run: totals over all measured (non-warm-up) requests plus the windows."""

    protocol: str  # "grpc" | "rest"
    mode: str  # "closed" | "open"
    concurrency: int | None  # closed loop: requests in flight
    target_rps: float | None  # open loop: scheduled arrival rate
    duration_s: float
    count: int
    errors: int
    errors_by_status: dict[str, int]
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    rps: float
    windows: tuple[WindowSummary, ...]
    stable: bool  # the stability rule was met
    cpu_percent: float | None = None  # server, mean
    rss_mb: float | None = None  # server, max
    gpu_util_percent: float | None = None  # mean over devices and samples
    gpu_memory_mb: float | None = None  # max over samples, summed over devices
    server_p50_ms: float | None = None
    server_mean_ms: float | None = None
    client_saturated: bool = False
    extra: dict[str, float] = field(default_factory=dict)  # e.g. cache_hit_ratio, benchmark stats
    latency_histogram: dict[str, Any] | None = None  # compact form for plots; see load.histogram

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    def metric(self, name: str) -> float | None:
        if name == "error_rate":
            return self.error_rate
        if name in self.extra:
            return float(self.extra[name])
        value = getattr(self, name, None)
        return None if value is None else float(value)

    def window_values(self, name: str) -> list[float]:
        return [v for w in self.windows if (v := w.metric(name)) is not None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        data = dict(data)
        data["windows"] = tuple(WindowSummary(**w) for w in data.get("windows", ()))
        return cls(**data)
