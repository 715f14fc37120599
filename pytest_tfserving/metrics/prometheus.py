"""Server-side latency from TF Serving's Prometheus page: parse, select a histogram, diff, estimate.

Server-side latency separates time spent in the server from time in the client and network. TF Serving
exports cumulative histograms, so a window's figure is the difference of two scrapes, and quantiles are
estimated as Prometheus' ``histogram_quantile`` does (linear interpolation inside the bucket).

Once per window::

    scraper = PrometheusScraper(url, labels={"model_name": "m", "API": "predict"})
    before = scraper.scrape()
    ...  # load
    window = scraper.scrape().delta(before)
    window.quantile_ms(0.5), window.mean_ms(), window.count
"""

from __future__ import annotations

import asyncio
import math
import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pytest_tfserving.metrics.errors import SamplingError

REQUEST_LATENCY = ":tensorflow:serving:request_latency"  # microseconds; labels model_name, API, entrypoint
REQUEST_COUNT = ":tensorflow:serving:request_count"  # counter; labels model_name, status
DEFAULT_PATH = "/monitoring/prometheus/metrics"

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}

Labels = tuple[tuple[str, str], ...]


class ExpositionError(ValueError):
    """The text is not Prometheus text exposition format; the message names the line."""


@dataclass(frozen=True)
class Sample:
    """One exposition line: ``name{labels} value``."""

    name: str
    labels: Labels  # sorted (name, value) pairs
    value: float

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


def _parse_labels(line: str, pos: int, lineno: int) -> tuple[Labels, int]:
    """Parse ``{a="x",b="y"}`` starting at ``line[pos] == '{'``; return labels and the index after '}'."""
    labels: dict[str, str] = {}
    pos += 1
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == "}":
            return tuple(sorted(labels.items())), pos + 1
        match = _LABEL_NAME.match(line, pos)
        if not match:
            raise ExpositionError(f"line {lineno}: bad label name at column {pos + 1}: {line!r}")
        name = match.group()
        pos = match.end()
        if line[pos:pos + 2] != '="':
            raise ExpositionError(f"line {lineno}: expected =\" after label {name!r}: {line!r}")
        pos += 2
        chars: list[str] = []
        while True:
            if pos >= len(line):
                raise ExpositionError(f"line {lineno}: unterminated value of label {name!r}: {line!r}")
            char = line[pos]
            if char == "\\" and pos + 1 < len(line):
                chars.append(_ESCAPES.get(line[pos + 1], "\\" + line[pos + 1]))
                pos += 2
            elif char == '"':
                pos += 1
                break
            else:
                chars.append(char)
                pos += 1
        labels[name] = "".join(chars)
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos >= len(line) or line[pos] != "}":
            raise ExpositionError(f"line {lineno}: expected , or }} after label {name!r}: {line!r}")


def parse_text(text: str) -> list[Sample]:
    """All samples of a text-format page (comments and blank lines skipped)."""
    samples: list[Sample] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _NAME.match(line)
        if not match:
            raise ExpositionError(f"line {lineno}: no metric name: {raw!r}")
        name = match.group()
        pos = match.end()
        labels: Labels = ()
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, lineno)
        fields = line[pos:].split()
        if not fields or len(fields) > 2:
            raise ExpositionError(f"line {lineno}: expected a value (and optional timestamp): {raw!r}")
        try:
            value = float(fields[0])
        except ValueError:
            raise ExpositionError(f"line {lineno}: bad sample value {fields[0]!r}: {raw!r}") from None
        samples.append(Sample(name, labels, value))
    return samples


def _matches(labels: Labels, wanted: Mapping[str, str]) -> bool:
    have = dict(labels)
    return all(have.get(k) == v for k, v in wanted.items())


def counter_value(samples: Iterable[Sample], name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of all series of ``name`` whose labels include ``labels`` (0 when none match)."""
    wanted = labels or {}
    return sum(s.value for s in samples if s.name == name and _matches(s.labels, wanted))


@dataclass(frozen=True)
class HistogramState:
    """A cumulative histogram (or the difference of two): bucket upper bounds with cumulative counts.

    Values are in the metric's unit (microseconds for TF Serving's request_latency); the ``_ms``
    helpers divide by 1000 for that case. ``series`` is how many label sets were summed (0 = absent).
    """

    bounds: tuple[float, ...]  # ascending upper bounds, last is +Inf
    cumulative: tuple[float, ...]  # observations <= each bound
    sum: float
    count: float
    series: int = 1

    @classmethod
    def empty(cls) -> HistogramState:
        return cls(bounds=(), cumulative=(), sum=0.0, count=0.0, series=0)

    def delta(self, earlier: HistogramState) -> HistogramState:
        """Observations made between ``earlier`` and this scrape.

        A counter that went down means the server restarted; as Prometheus' ``increase`` does, the
        post-restart counts are then taken as the increase.
        """
        if not earlier.bounds or not self.bounds:
            return self
        if earlier.bounds != self.bounds:
            raise ValueError(
                "bucket boundaries differ between the two scrapes; select one histogram "
                "(pass labels that pick series with the same buckets)"
            )
        diffs = tuple(now - then for now, then in zip(self.cumulative, earlier.cumulative, strict=True))
        if self.count < earlier.count or any(d < 0 for d in diffs):
            return self
        return HistogramState(self.bounds, diffs, self.sum - earlier.sum, self.count - earlier.count,
                              self.series)

    def quantile(self, q: float) -> float:
        """The q-quantile estimated like PromQL ``histogram_quantile``; NaN with no observations."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if len(self.bounds) < 2 or not math.isinf(self.bounds[-1]):
            return math.nan
        counts: list[float] = []
        for value in self.cumulative:  # repair non-monotonic scrapes as Prometheus does
            counts.append(max(value, counts[-1]) if counts else value)
        observations = counts[-1]
        if observations <= 0:
            return math.nan
        rank = q * observations
        # first bucket reaching the rank; ``c > 0`` makes q=0 the lower edge of the first non-empty bucket
        # (PromQL gives NaN there when the first bucket is empty); otherwise identical to PromQL
        b = next(i for i, c in enumerate(counts) if c >= rank and c > 0)
        if b == len(counts) - 1:
            return self.bounds[-2]
        if b == 0 and self.bounds[0] <= 0:
            return self.bounds[0]
        start, end, in_bucket = 0.0, self.bounds[b], counts[b]
        if b > 0:
            start = self.bounds[b - 1]
            in_bucket -= counts[b - 1]
            rank -= counts[b - 1]
        return start + (end - start) * (rank / in_bucket)

    def mean(self) -> float:
        """Mean observation from ``_sum``/``_count``; NaN with no observations."""
        return self.sum / self.count if self.count > 0 else math.nan

    def quantile_ms(self, q: float) -> float:
        return self.quantile(q) / 1000.0

    def mean_ms(self) -> float:
        return self.mean() / 1000.0


def select_histogram(samples: Iterable[Sample], name: str,
                     labels: Mapping[str, str] | None = None) -> HistogramState:
    """The histogram ``name`` summed over every series whose labels include ``labels``.

    Returns ``HistogramState.empty()`` when no series matches: TF Serving only exports a label set
    after its first request, so a scrape before any load legitimately has none.
    """
    wanted = dict(labels or {})
    buckets: dict[Labels, dict[float, float]] = {}
    sums: dict[Labels, float] = {}
    counts: dict[Labels, float] = {}
    for sample in samples:
        if sample.name == f"{name}_bucket":
            le = sample.label("le")
            if le is None:
                raise ExpositionError(f"{sample.name} sample without an le label: {sample.labels}")
            key = tuple(kv for kv in sample.labels if kv[0] != "le")
            if _matches(key, wanted):
                buckets.setdefault(key, {})[float(le)] = sample.value
        elif sample.name == f"{name}_sum" and _matches(sample.labels, wanted):
            sums[sample.labels] = sample.value
        elif sample.name == f"{name}_count" and _matches(sample.labels, wanted):
            counts[sample.labels] = sample.value
    if not buckets:
        return HistogramState.empty()
    bound_sets = {tuple(sorted(b)) for b in buckets.values()}
    if len(bound_sets) > 1:
        raise ValueError(f"series of {name} matching {wanted} have different buckets; narrow the labels")
    bounds = bound_sets.pop()
    if not math.isinf(bounds[-1]):
        raise ExpositionError(f"histogram {name} has no le=\"+Inf\" bucket")
    cumulative = tuple(sum(series[b] for series in buckets.values()) for b in bounds)
    total_sum = sum(sums.get(key, 0.0) for key in buckets)
    total_count = sum(counts.get(key, buckets[key][bounds[-1]]) for key in buckets)
    return HistogramState(bounds, cumulative, total_sum, total_count, series=len(buckets))


class PrometheusScraper:
    """Scrapes one histogram (by name and a subset of labels) from a Prometheus text endpoint."""

    def __init__(self, url: str, metric: str = REQUEST_LATENCY, labels: Mapping[str, str] | None = None,
                 timeout_s: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"metrics url must start with http:// or https://, got {url!r}")
        self.url = url
        self.metric = metric
        self.labels = dict(labels or {})
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def scrape_text(self) -> str:
        try:
            with self._opener.open(self.url, timeout=self.timeout_s) as response:
                return response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            raise SamplingError(
                f"GET {self.url} answered {exc.code}: is Prometheus monitoring enabled at this path? "
                "(--monitoring_config_file with prometheus_config "
                f"{{ enable: true, path: \"{DEFAULT_PATH}\" }})"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SamplingError(f"cannot scrape {self.url}: {exc} (is the server's REST port up?)") from exc

    def scrape_samples(self) -> list[Sample]:
        return parse_text(self.scrape_text())

    def scrape(self) -> HistogramState:
        """The selected histogram now (cumulative; use ``.delta(previous)`` for a window)."""
        return select_histogram(self.scrape_samples(), self.metric, self.labels)

    async def scrape_async(self) -> HistogramState:
        """``scrape`` in a worker thread, so an asyncio load loop is not blocked."""
        return await asyncio.to_thread(self.scrape)


def metrics_url(rest_port: int, host: str = "127.0.0.1", path: str = DEFAULT_PATH) -> str:
    """The Prometheus URL of a TF Serving REST port."""
    return f"http://{host}:{rest_port}{path}"
