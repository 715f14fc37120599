"""The ``perf`` fixture's handle: measure a running server, compare two, record results for the gate.

It knows no pytest: the session hands it what it needs (settings, baseline lookup, fingerprint) and
reads back what it recorded when the test's call phase ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_tfserving.backends.base import ServerCrashed
from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.ceilings import PerfChecks
from pytest_tfserving.gate.fingerprint import hardware_key
from pytest_tfserving.gate.judge import (
    DEFAULT_ALPHA,
    MetricVerdict,
    RelativeVerdict,
    judge,
    judge_against_reference,
    judge_relative,
    needs_more_windows,
)
from pytest_tfserving.gate.paired import min_pairs_signed_rank
from pytest_tfserving.load.alternating import measure_alternating
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.load.payloads import PayloadOptions
from pytest_tfserving.load.results import Measurement
from pytest_tfserving.load.runner import LoadConfig, measure_config, measure_interleaved
from pytest_tfserving.load.server_latency import ServerLatencySnapshot
from pytest_tfserving.load.single_request import BenchmarkFixture, measure_single_requests
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.metrics.composite import CompositeSampler
from pytest_tfserving.metrics.gpu import gpu_sampler_or_reason
from pytest_tfserving.metrics.prometheus import PrometheusScraper
from pytest_tfserving.metrics.resources import ResourceSampler
from pytest_tfserving.options import Settings

# A running server as the handle needs it (the backends' RunningServer satisfies this).
Server = Any


@dataclass
class Recorded:
    """One baselined measurement of a test (``name`` None: the test's main measurement)."""

    name: str | None
    measurement: Measurement
    fingerprint: dict[str, Any]
    baseline: Baseline | None
    verdicts: list[MetricVerdict]
    notes: list[str] = field(default_factory=list)
    deployment: dict[str, Any] | None = None  # what was measured, for --update-baselines


@dataclass(frozen=True)
class PerfContext:
    """What the session provides to one test's handle."""

    settings: Settings
    checks: PerfChecks
    find_baseline: Callable[[str | None], tuple[Baseline | None, list[str]]]
    fingerprint: Callable[[Server], dict[str, Any]]
    gpu_indices: tuple[int, ...] | None = None
    deployment: Callable[[Server], dict[str, Any] | None] = lambda server: None
    # --ab-baseline: the baseline's own deployment running beside ``server``, or None and why not
    reference: Callable[[Baseline | None, Server], tuple[Server | None, str | None]] = (
        lambda baseline, server: (None, None)
    )


def server_latency_source(server: Server, model_name: str) -> Callable[[], ServerLatencySnapshot] | None:
    """A callable reading the server's cumulative Prometheus request_latency for ``model_name``."""
    url = server.endpoints.prometheus_url
    if not url:
        return None
    scraper = PrometheusScraper(url, labels={"model_name": model_name})

    def snapshot() -> ServerLatencySnapshot:
        state = scraper.scrape()
        return tuple(zip(state.bounds, state.cumulative, strict=True)), state.count, state.sum

    return snapshot


@contextlib.contextmanager
def crash_explains_errors(*servers: Server, grace_s: float = 1.0) -> Iterator[None]:
    """An error while a server is dead is the crash's symptom (reset connections, a vanished pid):
    raise the server's ServerCrashed, which carries its exit status and log, chained to the symptom."""
    try:
        yield
    except Exception as symptom:
        deadline = time.monotonic() + grace_s  # the reset can reach us just before the exit is reaped
        while True:
            for server in servers:
                try:
                    server.check_alive()
                except ServerCrashed as crashed:
                    raise crashed from symptom
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _rps_from_latency(measurement: Measurement) -> Measurement:
    """Per-window rps as concurrency / mean latency (Little's law for a closed loop). With requests
    alternating between two servers both complete the same count, so their measured rps cannot differ;
    what differs, and what a server alone would turn into throughput, is the latency."""
    concurrency = measurement.concurrency or 1
    windows = tuple(
        dataclasses.replace(w, rps=1000.0 * concurrency / w.mean_ms if w.mean_ms > 0 else 0.0)
        for w in measurement.windows
    )
    return dataclasses.replace(measurement, windows=windows)


def _extension(rule: StabilityRule, measured: int) -> StabilityRule:
    """How many more windows to measure for an unsettled verdict: at least 3, at most what is left."""
    extra = min(rule.max_windows - measured, max(3, rule.min_windows // 2))
    return StabilityRule(min_windows=extra, max_windows=extra)


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

    if hist is not None:
        p50, p90, p95, p99 = hist.percentiles((50, 90, 95, 99))
        mean = hist.mean_ms
    else:  # no histogram to merge: keep the first run's figures (the windows still carry both)
        p50, p90, p95, p99, mean = first.p50_ms, first.p90_ms, first.p95_ms, first.p99_ms, first.mean_ms
    return dataclasses.replace(
        first,
        duration_s=duration,
        count=count,
        errors=errors,
        errors_by_status=statuses,
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=max(first.max_ms, more.max_ms),
        mean_ms=mean,
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


class PerfHandle:
    """Measure servers and record results; the gate judges them when the test's call phase ends."""

    def __init__(self, context: PerfContext) -> None:
        self._context = context

    @property
    def checks(self) -> PerfChecks:
        """The test's parsed ``perf`` marker: ceilings, tolerances and gated metrics."""
        return self._context.checks
        self.recorded: list[Recorded] = []
        self.relative: list[RelativeVerdict] = []
        self.notes: list[str] = []

    # -- building blocks -------------------------------------------------------------------------
    def _sampler(self, server: Server) -> ResourceSampler:
        gpu, reason = gpu_sampler_or_reason(self._context.gpu_indices)
        if (
            gpu is None
            and self._context.checks.ceilings
            and any(c.metric.startswith("gpu_") for c in self._context.checks.ceilings)
        ):
            self.notes.append(f"GPU metrics unavailable: {reason}")
        return CompositeSampler(server.resource_sampler(), gpu)

    def load_config(
        self,
        server: Server,
        *,
        protocol: str = "grpc",
        model: str | None = None,
        signature_name: str = "serving_default",
        mode: str = "closed",
        concurrency: int = 1,
        rate: float | None = None,
        arrival: str = "constant",
        payloads: PayloadOptions | None = None,
        timeout_s: float = 10.0,
        sample_resources: bool = True,
    ) -> LoadConfig:
        """How to load ``server``: the first model of its spec unless ``model`` names another."""
        model_name = model or server.spec.models[0].name
        target = server.endpoints.grpc_target if protocol == "grpc" else server.endpoints.rest_url
        return LoadConfig(
            target=target,
            model_name=model_name,
            protocol=protocol,
            signature_name=signature_name,
            mode=mode,
            concurrency=concurrency,
            rate=rate,
            arrival=arrival,
            payloads=payloads or PayloadOptions(),
            timeout_s=timeout_s,
            sampler=self._sampler(server) if sample_resources else None,
            server_latency=server_latency_source(server, model_name),
        )

    def _rule(self, min_windows: int | None, max_windows: int | None) -> StabilityRule:
        settings = self._context.settings
        low = min_windows or settings.perf_min_windows
        high = max(max_windows or settings.perf_max_windows, low)
        return StabilityRule(min_windows=low, max_windows=high)

    # -- the user's API --------------------------------------------------------------------------
    def measure(
        self,
        server: Server,
        *,
        name: str | None = None,
        min_windows: int | None = None,
        max_windows: int | None = None,
        warmup_s: float | None = None,
        window_s: float | None = None,
        workers: int = 1,
        **load: Any,
    ) -> Measurement:
        """Load ``server`` until stable, judge against the baseline (measuring more windows while the
        verdict is inconclusive, up to ``max_windows``), record, and return the measurement.

        ``load``: protocol ("grpc"/"rest"), mode ("closed"/"open"), concurrency, rate, arrival,
        model, signature_name, payloads (PayloadOptions), timeout_s.
        """
        with crash_explains_errors(server):
            return self._measure(server, name, min_windows, max_windows, warmup_s, window_s, workers, load)

    def _measure(
        self,
        server: Server,
        name: str | None,
        min_windows: int | None,
        max_windows: int | None,
        warmup_s: float | None,
        window_s: float | None,
        workers: int,
        load: dict[str, Any],
    ) -> Measurement:
        settings = self._context.settings
        rule = self._rule(min_windows, max_windows)
        server.check_alive()
        baseline, notes = self._context.find_baseline(name)
        fingerprint = self._context.fingerprint(server)
        reference, why_not = self._context.reference(baseline, server)
        if why_not:
            notes.append(f"--ab-baseline: judged against the stored runs, because {why_not}")
        if reference is not None and workers > 1:
            notes.append("--ab-baseline: judged against the stored runs: workers > 1 cannot interleave")
            reference = None
        config = self.load_config(server, **load)
        warm = settings.perf_warmup if warmup_s is None else warmup_s
        window = settings.perf_window if window_s is None else window_s
        try:
            if reference is not None:
                # The recorded figures (ceilings, report) come from the server alone, as without
                # --ab-baseline; the verdicts come from the pairs measured beside the reference.
                measurement = measure_config(config, warmup_s=warm, window_s=window, rule=rule)
                server.check_alive()
                _, verdicts, note = self._measure_beside(
                    reference, server, config, rule, warm, window, load, fingerprint
                )
                notes.append(note)
            else:
                measurement, verdicts = self._measure_alone(
                    server, config, rule, warm, window, workers, baseline, fingerprint
                )
        finally:
            if config.sampler is not None:
                config.sampler.close()
        deployment = self._context.deployment(server)
        self.recorded.append(Recorded(name, measurement, fingerprint, baseline, verdicts, notes, deployment))
        return measurement

    def _measure_alone(
        self,
        server: Server,
        config: LoadConfig,
        rule: StabilityRule,
        warm: float,
        window: float,
        workers: int,
        baseline: Baseline | None,
        fingerprint: Mapping[str, Any],
    ) -> tuple[Measurement, list[MetricVerdict]]:
        """Measure until stable and judge against the stored baseline, re-measuring while unsettled."""
        measurement = measure_config(config, warmup_s=warm, window_s=window, rule=rule, workers=workers)
        server.check_alive()
        verdicts = self._judge(baseline, measurement, fingerprint)
        while any(needs_more_windows(v) for v in verdicts) and len(measurement.windows) < rule.max_windows:
            more = measure_config(
                config,
                warmup_s=min(warm, 0.5),
                window_s=window,
                rule=_extension(rule, len(measurement.windows)),
                workers=workers,
            )
            server.check_alive()
            measurement = merge_measurements(measurement, more)
            verdicts = self._judge(baseline, measurement, fingerprint)
        return measurement, verdicts

    def _measure_beside(
        self,
        reference: Server,
        server: Server,
        config: LoadConfig,
        rule: StabilityRule,
        warm: float,
        window: float,
        load: dict[str, Any],
        fingerprint: Mapping[str, Any],
    ) -> tuple[Measurement, list[MetricVerdict], str]:
        """--ab-baseline: the baseline's deployment and this one in interleaved windows, judged pairwise."""
        reference_config = self.load_config(reference, **load)
        checks = self._context.checks

        # One request in flight: alternate requests, so both sides share every millisecond (the VM's
        # speed swings within a second). More in flight: the two servers would compete for the CPU,
        # so they take turns by window instead (docs/GATE.md).
        alternate = config.mode == "closed" and config.concurrency == 1

        def rounds(n: int, warmup: float) -> tuple[Measurement, Measurement]:
            reference.check_alive()
            with crash_explains_errors(server, reference):
                pair = measure_alternating if alternate else measure_interleaved
                result = pair(reference_config, config, n, warmup_s=warmup, window_s=window)
            reference.check_alive()
            server.check_alive()
            return result

        def verdicts_of(ref: Measurement, cur: Measurement) -> list[MetricVerdict]:
            if alternate:  # strict alternation completes as many requests on each side: see below
                ref, cur = _rps_from_latency(ref), _rps_from_latency(cur)
            return judge_against_reference(
                ref, cur, gate=checks.gate, tolerance=checks.tolerance, tolerances=checks.tolerances,
                hardware=hardware_key(fingerprint),
            )

        try:
            # The exact signed-rank test needs 7 pairs to reach alpha 0.01: start there, not below.
            first = min(rule.max_windows, max(rule.min_windows, min_pairs_signed_rank(DEFAULT_ALPHA)))
            ref, cur = rounds(first, warm)
            verdicts = verdicts_of(ref, cur)
            while any(needs_more_windows(v) for v in verdicts) and len(cur.windows) < rule.max_windows:
                more_ref, more_cur = rounds(_extension(rule, len(cur.windows)).max_windows, min(warm, 0.5))
                ref, cur = merge_measurements(ref, more_ref), merge_measurements(cur, more_cur)
                verdicts = verdicts_of(ref, cur)
        finally:
            if reference_config.sampler is not None:
                reference_config.sampler.close()
        models = ", ".join(f"{m.name} from {m.base_path}" for m in reference.spec.models)
        note = (
            f"--ab-baseline: judged against the baseline's deployment ({models}) served beside it in "
            f"{len(cur.windows)} {'alternating' if alternate else 'interleaved'} window pairs; "
            f"its p50 {ref.p50_ms:.4g} ms against {cur.p50_ms:.4g} ms"
        )
        if alternate:
            note += "; rps judged as concurrency / mean latency (alternating splits throughput evenly)"
        return cur, verdicts, note

    def compare(
        self,
        a: Server,
        b: Server,
        *,
        metric: str = "p50_ms",
        max_ratio: float | None = None,
        min_ratio: float | None = None,
        labels: tuple[str, str] = ("a", "b"),
        rounds: int = 6,
        max_rounds: int | None = None,
        warmup_s: float | None = None,
        window_s: float | None = None,
        **load: Any,
    ) -> tuple[Measurement, Measurement, RelativeVerdict]:
        """Measure ``a`` and ``b`` in interleaved windows (A B B A ...) and assert a ratio of ``metric``,
        e.g. ``compare(int8, fp32, metric="p50_ms", max_ratio=0.6)`` for "int8 p50 <= 0.6x fp32".
        Immune to machine drift; the verdict is recorded and fails the test when the bound is broken.
        While the interval straddles the bound, more rounds are measured, up to ``max_rounds``
        (default 3 x ``rounds``); still undecided, the point estimate decides (see ``relative_failed``).
        """
        settings = self._context.settings
        with crash_explains_errors(a, b):
            a_config = self.load_config(a, **load)
            b_config = self.load_config(b, **load)
        warm = settings.perf_warmup if warmup_s is None else warmup_s
        window = settings.perf_window if window_s is None else window_s

        def pairs(n_rounds: int, warmup: float) -> tuple[Measurement, Measurement]:
            a.check_alive()
            b.check_alive()
            with crash_explains_errors(a, b):
                result = measure_interleaved(a_config, b_config, n_rounds, warmup_s=warmup, window_s=window)
            a.check_alive()
            b.check_alive()
            return result

        def verdict_of(ma: Measurement, mb: Measurement) -> RelativeVerdict:
            return judge_relative(
                ma,
                mb,
                metric,
                max_ratio=max_ratio,
                min_ratio=min_ratio,
                min_windows=min(rounds, 5),
                label_a=labels[0],
                label_b=labels[1],
            )

        try:
            ma, mb = pairs(rounds, warm)
            verdict = verdict_of(ma, mb)
            done = rounds
            # An interval that straddles the bound is settled by more pairs, up to max_rounds in all.
            while needs_more_windows(verdict) and done < (max_rounds or 3 * rounds):
                more_a, more_b = pairs(rounds, min(warm, 0.5))
                ma, mb = merge_measurements(ma, more_a), merge_measurements(mb, more_b)
                done += rounds
                verdict = verdict_of(ma, mb)
        finally:
            for config in (a_config, b_config):
                if config.sampler is not None:
                    config.sampler.close()
        self.relative.append(verdict)
        return ma, mb, verdict

    def single_request(
        self,
        server: Server,
        benchmark: BenchmarkFixture,
        *,
        name: str | None = None,
        rounds: int = 100,
        warmup_rounds: int = 10,
        windows: int | None = None,
        **load: Any,
    ) -> Measurement:
        """Single-request latency (one blocking request at a time, nothing else in flight) timed by
        pytest-benchmark's ``benchmark`` fixture: its statistics become the measurement, which is
        then judged and recorded like ``measure``'s. ``windows`` (default --perf-min-windows) cuts the
        rounds into consecutive windows for the judge. ``load``: protocol, model, signature_name,
        payloads, timeout_s. A failed request stops the run (``RequestFailed``): error rates are
        ``measure``'s job. ``benchmark`` can be used once per test, so an inconclusive verdict is
        not re-measured, and --ab-baseline does not apply (a note says so).
        """
        with crash_explains_errors(server):
            server.check_alive()
            config = self.load_config(server, **load)
            try:
                measurement = measure_single_requests(
                    config,
                    benchmark,
                    rounds=rounds,
                    warmup_rounds=warmup_rounds,
                    windows=windows or self._context.settings.perf_min_windows,
                )
            finally:
                if config.sampler is not None:
                    config.sampler.close()
            server.check_alive()
        self.record(measurement, server, name=name)
        if self._context.settings.ab_baseline:
            self.recorded[-1].notes.append(
                "--ab-baseline: judged against the stored runs: single-request latency is timed once, "
                "by pytest-benchmark"
            )
        return measurement

    def record(self, measurement: Measurement, server: Server, *, name: str | None = None) -> None:
        """Record a measurement made elsewhere (judged against its baseline like ``measure``'s)."""
        baseline, notes = self._context.find_baseline(name)
        fingerprint = self._context.fingerprint(server)
        verdicts = self._judge(baseline, measurement, fingerprint)
        deployment = self._context.deployment(server)
        self.recorded.append(Recorded(name, measurement, fingerprint, baseline, verdicts, notes, deployment))

    def _judge(
        self, baseline: Baseline | None, measurement: Measurement, fingerprint: Mapping[str, Any]
    ) -> list[MetricVerdict]:
        if baseline is None:
            return []
        checks = self._context.checks
        return judge(
            baseline,
            measurement,
            fingerprint,
            gate=checks.gate,
            tolerance=checks.tolerance,
            tolerances=checks.tolerances,
            run_drift=self._context.settings.perf_run_drift,
        )
