"""Resource samples (CPU, memory, GPU) of a server under load; one sampler protocol for all backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str
    util_percent: float
    memory_used_mb: float
    memory_total_mb: float


@dataclass(frozen=True)
class ResourceSample:
    timestamp: float  # time.monotonic()
    cpu_percent: float  # 100 = one full core, as `docker stats` and psutil report
    rss_mb: float
    gpus: tuple[GpuSample, ...] = field(default=())


class ResourceSampler(Protocol):
    def sample(self) -> ResourceSample:
        """CPU% since the previous call (the first call primes and may report 0)."""
        ...

    def close(self) -> None: ...
