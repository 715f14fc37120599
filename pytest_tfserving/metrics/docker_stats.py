"""CPU and memory of a container, computed the way the ``docker stats`` CLI computes them.

Same numbers as ``docker stats`` means a regression seen in CI can be checked by hand on a laptop.
The CLI's rules (docker/cli ``cli/command/container/stats_helpers.go``):

* CPU% = (container CPU delta / host CPU delta) x online CPUs x 100, and 0 unless both deltas are
  positive; online CPUs fall back to the length of ``percpu_usage`` (cgroup v1 without ``online_cpus``).
* Memory = usage minus inactive page cache: ``total_inactive_file`` on cgroup v1, ``inactive_file`` on
  cgroup v2, each subtracted only when smaller than usage.

Podman's Docker-compatible endpoint sends the same shape, but ``memory_stats.stats`` is null (usage is
reported as is) and, without streaming, ``precpu_stats`` is all zeros. A previous reading without
``system_cpu_usage`` is treated as no reading (0%), where the CLI would print an average since boot.
Windows containers (``num_procs``/100 ns intervals) are not handled: TF Serving ships Linux images only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from pytest_tfserving.metrics.errors import SamplingError
from pytest_tfserving.metrics.resources import ResourceSample

MIB = 1024.0 * 1024.0


def _section(stats: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    value = stats.get(key) if stats else None
    return value if isinstance(value, Mapping) else {}


def _num(mapping: Mapping[str, Any], key: str) -> float:
    value = mapping.get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


def cpu_percent_from_stats(stats: Mapping[str, Any], previous: Mapping[str, Any] | None) -> float:
    """CPU% of ``stats`` against ``previous`` (an earlier stats dict), else its own ``precpu_stats``.

    100 = one full core, as in ``docker stats``.
    """
    current = _section(stats, "cpu_stats")
    before = _section(previous, "cpu_stats") if previous is not None else _section(stats, "precpu_stats")
    if _num(before, "system_cpu_usage") <= 0.0:
        return 0.0  # no earlier reading (first frame, one-shot, Podman without streaming)
    cpu_delta = _num(_section(current, "cpu_usage"), "total_usage") - _num(
        _section(before, "cpu_usage"), "total_usage"
    )
    system_delta = _num(current, "system_cpu_usage") - _num(before, "system_cpu_usage")
    online_cpus = _num(current, "online_cpus")
    if online_cpus == 0.0:
        percpu = _section(current, "cpu_usage").get("percpu_usage") or []
        online_cpus = float(len(percpu))
    if system_delta > 0.0 and cpu_delta > 0.0:
        return cpu_delta / system_delta * online_cpus * 100.0
    return 0.0


def memory_bytes_from_stats(stats: Mapping[str, Any]) -> float:
    """Memory usage without inactive page cache, in bytes (``docker stats`` MEM USAGE)."""
    memory = _section(stats, "memory_stats")
    usage = _num(memory, "usage")
    details = _section(memory, "stats")
    if "total_inactive_file" in details:  # cgroup v1
        inactive_v1 = _num(details, "total_inactive_file")
        if inactive_v1 < usage:
            return usage - inactive_v1
    inactive_v2 = _num(details, "inactive_file")  # cgroup v2 (0 when absent, as in the CLI)
    if inactive_v2 < usage:
        return usage - inactive_v2
    return usage


def memory_mb_from_stats(stats: Mapping[str, Any]) -> float:
    """Memory usage without inactive page cache, in MiB (what ``docker stats`` shows as MiB)."""
    return memory_bytes_from_stats(stats) / MIB


class StatsSource(Protocol):
    """What the sampler needs of a docker-py ``Container`` (Podman's docker-compatible API works too)."""

    name: str

    def stats(self, **kwargs: Any) -> Any: ...


class DockerStatsSampler:
    """ResourceSampler for a container, one ``container.stats(stream=False)`` call per sample.

    ``one_shot=True`` (default) returns at once and CPU is measured between our own samples, i.e. over
    the whole window; ``one_shot=False`` makes the daemon wait ~1 s to fill ``precpu_stats`` so even the
    first sample has a CPU figure.
    """

    def __init__(self, container: StatsSource, one_shot: bool = True) -> None:
        self.container = container
        self.one_shot = one_shot
        self._previous: Mapping[str, Any] | None = None

    def _read(self) -> Mapping[str, Any]:
        kwargs: dict[str, Any] = {"stream": False}
        if self.one_shot:
            kwargs["one_shot"] = True
        name = getattr(self.container, "name", "?")
        try:
            stats = self.container.stats(**kwargs)
        except Exception as exc:  # docker.errors.* and requests errors; docker is an optional import here
            if not (self.one_shot and "one_shot" in str(exc)):
                raise SamplingError(f"docker stats for container {name!r} failed: {exc}") from exc
            self.one_shot = False  # engine API < 1.41: fall back to the ~1 s two-reading call
            return self._read()
        if not isinstance(stats, Mapping) or not _section(stats, "memory_stats"):
            raise SamplingError(
                f"container {name!r} returned no memory stats: it is not running (check `docker logs {name}`)"
            )
        return stats

    def sample(self) -> ResourceSample:
        """CPU% since the previous call (the first one-shot call primes and reports 0)."""
        stats = self._read()
        now = time.monotonic()
        cpu = cpu_percent_from_stats(stats, self._previous)
        self._previous = stats
        return ResourceSample(timestamp=now, cpu_percent=cpu, rss_mb=memory_mb_from_stats(stats))

    def close(self) -> None:
        """The container belongs to the backend; nothing to release here."""
        self._previous = None
