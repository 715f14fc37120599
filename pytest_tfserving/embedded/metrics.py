"""Prometheus metrics with TF Serving's names, labels, bucket layouts and text format.

Names follow TF Serving's monitoring metric names with ``/`` turned into ``:`` (its exporter does
that), e.g. ``/tensorflow/serving/request_count`` -> ``:tensorflow:serving:request_count``.
Histograms use TensorFlow's exponential buckets (a bucket holds values below its limit, the last
limit is printed as +Inf) and numbers are printed with six significant digits like absl::StrCat.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

REQUEST_COUNT = "/tensorflow/serving/request_count"
REQUEST_LATENCY = "/tensorflow/serving/request_latency"
RUNTIME_LATENCY = "/tensorflow/serving/runtime_latency"
QUEUING_LATENCY = "/tensorflow/serving/batching_session/queuing_latency"
WRAPPED_RUN_COUNT = "/tensorflow/serving/batching_session/wrapped_run_count"
INPUT_BATCH_SIZE = "/tensorflow/serving/batching_session/input_batch_size"
PROCESSED_BATCH_SIZE = "/tensorflow/serving/batching_session/processed_batch_size"
PADDING_SIZE = "/tensorflow/serving/batching_session/padding_size"


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """tensorflow::monitoring::Buckets::Exponential: ``count`` limits from ``scale``, plus +Inf."""
    limits = [scale * growth**i for i in range(count)]
    return (*limits, float("inf"))


LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)  # request/runtime latency, microseconds
QUEUING_BUCKETS = exponential_buckets(100, 1.2, 52)  # batching queuing latency, microseconds
BATCH_SIZE_BUCKETS = (*tuple(float(2**i) for i in range(15)), float("inf"))  # 1 .. 16384 (our choice)


def prometheus_name(name: str) -> str:
    """TF Serving's GetPrometheusMetricName: every character outside [a-zA-Z0-9_] becomes ':'."""
    out = "".join(c if c.isascii() and (c.isalnum() or c == "_") else ":" for c in name)
    return "_" + out if out[:1].isdigit() else out


def _number(value: float) -> str:
    text = f"{value:.6g}"
    return text


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class _Histogram:
    limits: tuple[float, ...]
    labels: tuple[str, ...]
    cells: dict[tuple[str, ...], list[float]] = field(default_factory=dict)  # counts..., sum

    def add(self, key: tuple[str, ...], value: float) -> None:
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = [0.0] * (len(self.limits) + 1)
        index = min(bisect.bisect_right(self.limits, value), len(self.limits) - 1)
        cell[index] += 1
        cell[-1] += value


@dataclass
class _Counter:
    labels: tuple[str, ...]
    cells: dict[tuple[str, ...], int] = field(default_factory=dict)


class Metrics:
    """Thread-safe registry; ``render()`` returns the page TF Serving's Prometheus exporter serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, _Counter] = {
            REQUEST_COUNT: _Counter(("model_name", "status")),
            WRAPPED_RUN_COUNT: _Counter(()),
        }
        self._histograms: dict[str, _Histogram] = {
            REQUEST_LATENCY: _Histogram(LATENCY_BUCKETS, ("model_name", "API", "entrypoint")),
            RUNTIME_LATENCY: _Histogram(LATENCY_BUCKETS, ("model_name", "API", "runtime")),
            QUEUING_LATENCY: _Histogram(QUEUING_BUCKETS, ("thread_pool_name",)),
            INPUT_BATCH_SIZE: _Histogram(BATCH_SIZE_BUCKETS, ()),
            PROCESSED_BATCH_SIZE: _Histogram(BATCH_SIZE_BUCKETS, ()),
            PADDING_SIZE: _Histogram(BATCH_SIZE_BUCKETS, ("execution_batch_size",)),
        }

    def count(self, name: str, *labels: str, by: int = 1) -> None:
        with self._lock:
            cells = self._counters[name].cells
            cells[labels] = cells.get(labels, 0) + by

    def observe(self, name: str, value: float, *labels: str) -> None:
        with self._lock:
            self._histograms[name].add(labels, value)

    def request(self, model: str, api: str, entrypoint: str, status: str, latency_us: float) -> None:
        """One finished request: request_count always, request_latency only when OK (as upstream)."""
        self.count(REQUEST_COUNT, model, status)
        if status == "OK":
            self.observe(REQUEST_LATENCY, latency_us, model, api, entrypoint)

    def first_value(self, name: str) -> int:
        """A counter's first cell (what HandleReloadConfigRequest reports increases of); 0 if none."""
        with self._lock:
            counter = self._counters.get(name)
            if counter is None or not counter.cells:
                return 0
            return int(next(iter(counter.cells.values())))

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            names = sorted([*self._counters, *self._histograms])
            for name in names:
                prom = prometheus_name(name)
                if name in self._counters:
                    counter = self._counters[name]
                    if not counter.cells:
                        continue
                    lines.append(f"# TYPE {prom} counter")
                    for key, value in counter.cells.items():
                        lines.append(f"{prom}{{{self._labels(counter.labels, key)}}} {value}")
                    continue
                hist = self._histograms[name]
                if not hist.cells:
                    continue
                lines.append(f"# TYPE {prom} histogram")
                for key, cell in hist.cells.items():
                    labels = self._labels(hist.labels, key)
                    prefix = f"{prom}_bucket{{{labels}{',' if labels else ''}"
                    cumulative = 0
                    for i, limit in enumerate(hist.limits):
                        cumulative += int(cell[i])
                        le = "+Inf" if i == len(hist.limits) - 1 else _number(limit)
                        lines.append(f'{prefix}le="{le}"}} {cumulative}')
                    lines.append(f"{prom}_sum{{{labels}}} {_number(cell[-1])}")
                    lines.append(f"{prom}_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
        return ",".join(f'{n}="{_label_value(v)}"' for n, v in zip(names, values, strict=True))
