"""CPU and memory of a local server process tree (binary or embedded backend), read with psutil.

CPU is computed from cumulative CPU seconds over the whole tree rather than psutil's per-object
``cpu_percent``, so a child that starts between two samples counts for all the time it ran (a child that
exits between two samples loses its last interval, as with ``docker stats`` on a short-lived exec).
"""

from __future__ import annotations

import contextlib
import time

import psutil

from pytest_tfserving.metrics.errors import SamplingError
from pytest_tfserving.metrics.resources import ResourceSample

MIB = 1024.0 * 1024.0


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


class ProcessSampler:
    """ResourceSampler for a pid: CPU% since the previous sample (100 = one core), RSS MiB summed."""

    def __init__(self, pid: int, include_children: bool = True) -> None:
        try:
            self._root = psutil.Process(pid)
        except psutil.NoSuchProcess as exc:
            raise SamplingError(f"no process with pid {pid}: is the server running?") from exc
        self.pid = pid
        self.include_children = include_children
        # pid -> (create_time, cpu seconds at the previous sample); create_time guards pid reuse.
        self._cpu_by_pid: dict[int, tuple[float, float]] = {}
        self._last_wall: float | None = None

    def _tree(self) -> list[psutil.Process]:
        procs = [self._root]
        if self.include_children:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.extend(self._root.children(recursive=True))
        return procs

    def sample(self) -> ResourceSample:
        """CPU% since the previous call (the first call primes and reports 0)."""
        if not self._root.is_running():
            raise SamplingError(f"server process {self.pid} has exited; cannot sample its resources")
        now = time.monotonic()
        rss = 0
        cpu_delta = 0.0
        seen: dict[int, tuple[float, float]] = {}
        for proc in self._tree():
            try:
                with proc.oneshot():
                    created = proc.create_time()
                    cpu = _cpu_seconds(proc)
                    rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except psutil.AccessDenied as exc:
                raise SamplingError(
                    f"no permission to read process {proc.pid} (run the tests as the server's user)"
                ) from exc
            seen[proc.pid] = (created, cpu)
            previous = self._cpu_by_pid.get(proc.pid)
            if previous is not None and previous[0] == created:
                cpu_delta += max(0.0, cpu - previous[1])
            elif self._last_wall is not None:
                # Not in the tree at the last sample (or its pid was reused): it started since, so all
                # its CPU time is in this interval. Not decided by comparing create_time with the
                # clock: psutil derives it from the kernel's whole-second boot time, which put children
                # up to a second before the sample they followed (seen here: 0.5 s).
                cpu_delta += cpu
        cpu_percent = 0.0
        if self._last_wall is not None and now > self._last_wall:
            cpu_percent = 100.0 * cpu_delta / (now - self._last_wall)
        self._cpu_by_pid = seen
        self._last_wall = now
        return ResourceSample(timestamp=now, cpu_percent=cpu_percent, rss_mb=rss / MIB)

    def close(self) -> None:
        """Nothing to release; present for the ResourceSampler protocol."""
