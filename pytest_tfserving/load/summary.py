"""Turns raw windows into WindowSummary / Measurement, adding server resources and server latency.

Kept apart from the event loop: ``finish`` may block (a sampler reading ``docker stats``), so the runner
calls it from a thread or from the parent of the load workers, never inside the measured loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_tfserving.load import server_latency as sl
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.loops import WindowRecord
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.metrics.resources import ResourceSample, ResourceSampler

SATURATED_LOOP_CPU = 0.9  # event-loop thread busy this share of a core: the client limits the load
SATURATED_LATE_SHARE = 0.05  # open loop: this share of sends started more than LATE_SEND_S late


@dataclass(frozen=True)
class StabilityRule:
    """Stop once the last ``last`` windows' p50 lie within ``tolerance`` of each other (max/min - 1),
    after at least ``min_windows``; give up (``stable=False``) after ``max_windows``."""

    min_windows: int = 3
    max_windows: int = 10
    last: int = 3
    tolerance: float = 0.10

    def __post_init__(self) -> None:
        if self.last < 1 or self.min_windows < 1 or self.max_windows < self.min_windows:
            raise ValueError(
                f"need last >= 1 and 1 <= min_windows <= max_windows, got last={self.last}, "
                f"min_windows={self.min_windows}, max_windows={self.max_windows}"
            )
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")

    def is_stable(self, windows: list[WindowSummary]) -> bool:
        if len(windows) < max(self.min_windows, self.last):
            return False
        tail = windows[-self.last :]
        if any(w.count - w.errors == 0 for w in tail):
            return False
        p50s = [w.p50_ms for w in tail]
        return max(p50s) <= min(p50s) * (1.0 + self.tolerance)


class Summarizer:
    """Accumulates the windows of one side (one server) of a run."""

    def __init__(
        self,
        *,
        protocol: str,
        mode: str,
        concurrency: int | None,
        target_rps: float | None,
        rule: StabilityRule,
        sampler: ResourceSampler | None = None,
        server_latency: sl.ServerLatencySource | None = None,
        extra: dict[str, float] | None = None,
    ) -> None:
        self.protocol, self.mode = protocol, mode
        self.concurrency, self.target_rps = concurrency, target_rps
        self.rule = rule
        self.sampler = sampler
        self.server_latency = server_latency
        self.extra = dict(extra or {})
        self.windows: list[WindowSummary] = []
        self.records: list[WindowRecord] = []
        self.samples: list[ResourceSample] = []
        self._server_prev: sl.ServerLatencySnapshot | None = None
        self._server_total: dict[float, float] = {}
        self._server_count = 0.0
        self._server_sum = 0.0
        self.saturated_windows = 0

    @property
    def done(self) -> bool:
        return len(self.windows) >= self.rule.max_windows or self.rule.is_stable(self.windows)

    def prime(self) -> None:
        """Start the CPU and server-latency deltas; call at the start of a measured stretch."""
        if self.sampler is not None:
            self.sampler.sample()
        if self.server_latency is not None:
            self._server_prev = sl.as_snapshot(self.server_latency())

    def finish(self, record: WindowRecord) -> WindowSummary:
        cpu = rss = server_p50 = None
        if self.sampler is not None:
            sample = self.sampler.sample()
            self.samples.append(sample)
            cpu, rss = sample.cpu_percent, sample.rss_mb
        if self.server_latency is not None and self._server_prev is not None:
            now = sl.as_snapshot(self.server_latency())
            window = sl.delta(now, self._server_prev)
            self._server_prev = now
            server_p50 = sl.quantile_ms(window, 0.5)
            for bound, n in window[0]:
                self._server_total[bound] = self._server_total.get(bound, 0.0) + n
            self._server_count += window[1]
            self._server_sum += window[2]
        ok = record.count - record.errors
        summary = WindowSummary(
            start_s=record.start_s,
            duration_s=record.duration_s,
            count=record.count,
            errors=record.errors,
            **record.histogram.statistics().fields(),
            rps=ok / record.duration_s if record.duration_s > 0 else 0.0,
            cpu_percent=cpu,
            rss_mb=rss,
            server_p50_ms=server_p50,
        )
        if self._saturated(record):
            self.saturated_windows += 1
        self.windows.append(summary)
        self.records.append(record)
        return summary

    def _saturated(self, record: WindowRecord) -> bool:
        if record.loop_cpu >= SATURATED_LOOP_CPU:
            return True
        if self.mode != "open" or not record.sent or record.capped_sends:
            return False  # capped: the server holds max_in_flight requests, not a client limit
        return record.late_sends / record.sent > SATURATED_LATE_SHARE

    def measurement(self) -> Measurement:
        if not self.records:
            raise RuntimeError("no measurement window finished; was the run stopped before warm-up ended?")
        total = WindowRecord(index=0, start_s=0.0, histogram=Histogram())
        for record in self.records:
            total.merge(record)
        duration = sum(r.duration_s for r in self.records)
        hist = total.histogram
        cpu = [w.cpu_percent for w in self.windows if w.cpu_percent is not None]
        rss = [w.rss_mb for w in self.windows if w.rss_mb is not None]
        gpu_util = [g.util_percent for s in self.samples for g in s.gpus]
        gpu_mem = [sum(g.memory_used_mb for g in s.gpus) for s in self.samples if s.gpus]
        server = (sorted(self._server_total.items()), self._server_count, self._server_sum)
        extra = dict(self.extra)
        extra.update(
            sent_rps=total.sent / duration if duration else 0.0,
            client_loop_cpu_max=max(r.loop_cpu for r in self.records),
            client_loop_lag_ms_max=max(r.max_loop_lag_ms for r in self.records),
            client_send_lag_ms_max=total.max_send_lag_ms,
            late_send_share=total.late_sends / total.sent if total.sent else 0.0,
            capped_sends=float(total.capped_sends),
        )
        return Measurement(
            protocol=self.protocol,
            mode=self.mode,
            concurrency=self.concurrency,
            target_rps=self.target_rps,
            duration_s=duration,
            count=total.count,
            errors=total.errors,
            errors_by_status=dict(sorted(total.errors_by_status.items())),
            **hist.statistics().fields(),
            rps=(total.count - total.errors) / duration if duration else 0.0,
            windows=tuple(self.windows),
            stable=self.rule.is_stable(self.windows),
            cpu_percent=sum(cpu) / len(cpu) if cpu else None,
            rss_mb=max(rss) if rss else None,
            gpu_util_percent=sum(gpu_util) / len(gpu_util) if gpu_util else None,
            gpu_memory_mb=max(gpu_mem) if gpu_mem else None,
            server_p50_ms=sl.quantile_ms(server, 0.5) if self.server_latency else None,
            server_mean_ms=sl.mean_ms(server) if self.server_latency else None,
            client_saturated=self.saturated_windows > 0,
            extra=extra,
            latency_histogram=hist.to_dict(),
        )
