"""The ``perf`` fixture's handle: measure a running server, compare two, record results for the gate.

It knows no pytest: the session hands it what it needs (settings, baseline lookup, fingerprint) and
reads back what it recorded when the test's call phase ends. The measuring itself lives beside it:
``settle`` (measure until the verdict settles), ``beside`` (--ab-baseline), ``loads`` (load configs
and their samplers), ``merge`` and ``crashes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_tfserving.gate.alpha_budget import AlphaSpender, per_verdict_look
from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.ceilings import PerfChecks
from pytest_tfserving.gate.judge import judge
from pytest_tfserving.gate.relative import judge_relative, stated_over_looks
from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict
from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.interleaved import measure_interleaved
from pytest_tfserving.load.locust_engine import LocustOptions
from pytest_tfserving.load.payloads import PayloadOptions
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.runner import measure
from pytest_tfserving.load.single_request import BenchmarkFixture, measure_single_requests
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.metrics.composite import CompositeSampler
from pytest_tfserving.metrics.gpu import gpu_sampler_or_reason
from pytest_tfserving.metrics.resources import ResourceSampler
from pytest_tfserving.perf.beside import measure_beside
from pytest_tfserving.perf.context import PerfContext, Recorded, Server
from pytest_tfserving.perf.crashes import alive_around, crash_explains_errors
from pytest_tfserving.perf.loads import open_loads, server_latency_source
from pytest_tfserving.perf.merge import merge_measurements
from pytest_tfserving.perf.settle import Limits, Sides, announce_extensions, measure_until_settled
from pytest_tfserving.serving.metric_labels import Method

if TYPE_CHECKING:
    from pytest_tfserving.gate.measured_servers import BesideServers

__all__ = [
    "PerfContext",
    "PerfHandle",
    "Recorded",
    "Server",
    "crash_explains_errors",
    "merge_measurements",
    "server_latency_source",
]


class PerfHandle:
    """Measure servers and record results; the gate judges them when the test's call phase ends."""

    def __init__(self, context: PerfContext) -> None:
        self._context = context
        self._alpha = AlphaSpender(context.alpha)  # this test's share of --perf-alpha, spent per call
        self.recorded: list[Recorded] = []
        self.relative: list[RelativeVerdict] = []
        self.notes: list[str] = []

    @property
    def alpha(self) -> float:
        """This test's share of --perf-alpha (``gate.alpha_budget``): what its verdicts spend in all."""
        return self._context.alpha

    @property
    def checks(self) -> PerfChecks:
        """The test's parsed ``perf`` marker: ceilings, tolerances and gated metrics."""
        return self._context.checks

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
        method: str = "predict",
    ) -> LoadConfig:
        """How to load ``server``: the first model of its spec unless ``model`` names another.

        ``method="classify"`` or ``"regress"`` sends Classify/Regress requests (REST ``:classify`` /
        ``:regress``) with ``payloads=PayloadOptions(examples=[[ex.SerializeToString()], ...])`` to a
        tf.Example ``signature_name``; the server-side latency reads that method's series. The same
        keywords go through ``measure``, ``compare`` and ``single_request``."""
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
            server_latency=server_latency_source(
                server, model_name, "rest" if protocol == "rest" else "grpc", _latency_method(method)
            ),
            method=method,
        )

    def _loads(self, load: Mapping[str, Any]) -> Callable[[Server], LoadConfig]:
        return lambda server: self.load_config(server, **load)

    def _rule(self, min_windows: int | None, max_windows: int | None) -> StabilityRule:
        settings = self._context.settings
        low = min_windows or settings.perf_min_windows
        high = max(max_windows or settings.perf_max_windows, low)
        return StabilityRule(min_windows=low, max_windows=high)

    def _reference(
        self,
        baseline: Baseline | None,
        server: Server,
        load: Mapping[str, Any],
        workers: int,
        notes: list[str],
        engine: str,
    ) -> BesideServers | None:
        """--ab-baseline: the baseline's deployment to measure beside ``server``, or None (noted why).

        ``--ab-replicas`` processes per side only where requests alternate (closed loop, one in
        flight): there the offset between two processes limits what the pairs can see, and more
        processes average it out. With more in flight the window pairs' own noise is the limit
        (docs/GATE.md, "Several processes per side"), so one process per side spares their start."""
        if workers > 1 or engine != "native":
            settings = self._context.settings
            if settings.ab_baseline and not settings.update_baselines and baseline is not None:
                why = "workers > 1" if engine == "native" else f"engine={engine!r}"
                notes.append(f"--ab-baseline: judged against the stored runs: {why} cannot interleave")
            return None
        alternating = load.get("mode", "closed") == "closed" and load.get("concurrency", 1) == 1
        replicas = self._context.settings.ab_replicas if alternating else 1
        reference, why_not = self._context.reference(baseline, server, replicas)
        if why_not:
            notes.append(f"--ab-baseline: judged against the stored runs, because {why_not}")
        return reference

    def _window_counter(self, label: str, total: int) -> Callable[[WindowSummary], None]:
        """A load ``progress`` callback numbering the windows of ``label`` across extensions."""
        counted = [0]

        def report(summary: WindowSummary) -> None:
            counted[0] += 1
            self._context.progress.window(label, counted[0], total, summary)

        return report

    def _summary(self, label: str, measurement: Measurement, verdicts: Sequence[Any]) -> None:
        judged = ", ".join(f"{v.metric} {v.verdict}" for v in verdicts) or "no baseline"
        self._context.progress.done(
            f"{label}: {len(measurement.windows)} windows, p50 {measurement.p50_ms:.3g} ms, "
            f"{measurement.rps:.4g} req/s; {judged}"
        )

    def _timing(self, warmup_s: float | None, window_s: float | None) -> tuple[float, float]:
        settings = self._context.settings
        warm = settings.perf_warmup if warmup_s is None else warmup_s
        return warm, settings.perf_window if window_s is None else window_s

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
        engine: str = "native",
        **load: Any,
    ) -> Measurement:
        """Load ``server`` until stable, judge against the baseline (measuring more windows while the
        verdict is inconclusive, up to ``max_windows``), record, and return the measurement.

        ``load``: protocol ("grpc"/"rest"), mode ("closed"/"open"), concurrency, rate, arrival,
        model, signature_name, payloads (PayloadOptions), timeout_s. ``engine="locust"``: Locust's
        master and ``workers`` Locust workers send the load (--locust-master-host for a fleet).
        """
        locust = LocustOptions(
            workers=workers,
            master_host=self._context.settings.locust_master_host,
            expect_workers=self._context.settings.locust_expect_workers,
        )
        with crash_explains_errors(server):
            rule = self._rule(min_windows, max_windows)
            server.check_alive()
            baseline, notes = self._context.find_baseline(name)
            fingerprint = self._context.fingerprint(server)
            reference = self._reference(baseline, server, load, workers, notes, engine)
            # Only a judged call spends alpha: without a baseline there is no verdict.
            call_alpha = self._alpha.next_call() if baseline is not None else self._context.alpha
            label = name or "measure"
            progress = self._context.progress
            with open_loads(self._loads(load), server) as (config,):
                warm, window = self._timing(warmup_s, window_s)
                progress.phase(f"{label}: warm-up {warm:g} s, then {rule.min_windows} to {rule.max_windows} "
                               f"windows of {window:g} s")
                windows = self._window_counter(label, rule.max_windows)
                if reference is not None:
                    # The recorded figures (ceilings, report) come from the server alone, as without
                    # --ab-baseline; the verdicts come from the pairs measured beside the reference.
                    measurement = measure(config, warmup_s=warm, window_s=window, rule=rule, progress=windows)
                    server.check_alive()
                    m = reference.replicas
                    servers = (*reference.reference, *reference.current[1:])
                    with open_loads(self._loads(load), *servers) as configs:
                        verdicts, note = measure_beside(
                            reference.reference,
                            reference.current,
                            configs[:m],
                            (config, *configs[m:]),
                            rule=rule,
                            warmup_s=warm,
                            window_s=window,
                            checks=self._context.checks,
                            fingerprint=fingerprint,
                            alpha=call_alpha,
                            progress=progress,
                        )
                    notes.append(note)
                else:

                    def alone(run: StabilityRule, warmup: float) -> Sides:
                        result = measure(config, warmup_s=warmup, window_s=window, rule=run, workers=workers,
                                         progress=windows, engine=engine, locust=locust)
                        server.check_alive()
                        return (result,)

                    limits = Limits.within(rule)
                    look_alpha = per_verdict_look(call_alpha, len(self.checks.gate), limits.looks())

                    def verdicts_of(sides: Sides) -> list[MetricVerdict]:
                        return self._judge(baseline, sides[0], fingerprint, look_alpha)

                    (measurement,), verdicts = measure_until_settled(
                        alone, verdicts_of, limits, warm,
                        on_extend=announce_extensions(progress, label),
                    )
            self._summary(label, measurement, verdicts)
            deployment = self._context.deployment(server)
            ran_with = {"min_windows": rule.min_windows, "max_windows": rule.max_windows, "window_s": window}
            self.recorded.append(
                Recorded(name, measurement, fingerprint, baseline, verdicts, notes, deployment, ran_with)
            )
            return measurement

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
        (default 3 x ``rounds``); still undecided, the verdict is ``inconclusive``: shown with the
        ratio the run could settle, failed under --perf-inconclusive=fail (``gate.outcome``).
        """
        # An interval that straddles the bound is settled by more pairs, up to max_rounds in all;
        # every look spends its share of the call's alpha.
        limits = Limits.in_rounds(rounds, max_rounds or 3 * rounds)
        look_alpha = per_verdict_look(self._alpha.next_call(), 1, limits.looks())
        label = f"compare {labels[0]}/{labels[1]} {metric}"
        progress = self._context.progress
        counters = {side: self._window_counter(f"{label} {side}", limits.max_windows) for side in ("a", "b")}
        with open_loads(self._loads(load), a, b) as (a_config, b_config):
            warm, window = self._timing(warmup_s, window_s)
            progress.phase(f"{label}: warm-up {warm:g} s, then {rounds} interleaved rounds of {window:g} s")

            def pairs(run: StabilityRule, warmup: float) -> Sides:
                with alive_around(a, b):
                    return measure_interleaved(
                        a_config, b_config, run.max_windows, warmup_s=warmup, window_s=window,
                        progress=lambda side, summary: counters[side](summary),
                    )

            def verdict_of(sides: Sides) -> list[RelativeVerdict]:
                ma, mb = sides
                return [
                    judge_relative(
                        ma,
                        mb,
                        metric,
                        max_ratio=max_ratio,
                        min_ratio=min_ratio,
                        alpha=look_alpha,
                        min_windows=min(rounds, 5),
                        label_a=labels[0],
                        label_b=labels[1],
                    )
                ]

            (ma, mb), (verdict,) = measure_until_settled(
                pairs, verdict_of, limits, warm,
                on_extend=announce_extensions(progress, label),
            )
        verdict = stated_over_looks(verdict, look_alpha, limits.looks())
        ratio = "-" if verdict.ratio is None else f"{verdict.ratio:.3f}x"
        progress.done(f"{label}: {verdict.verdict}, ratio {ratio} over {verdict.n_pairs} pairs")
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
        windows = windows or self._context.settings.perf_min_windows
        with crash_explains_errors(server):
            server.check_alive()
            with open_loads(self._loads(load), server) as (config,):
                measurement = measure_single_requests(
                    config,
                    benchmark,
                    rounds=rounds,
                    warmup_rounds=warmup_rounds,
                    windows=windows,
                )
            server.check_alive()
        self._record(measurement, server, name,
                     {"min_windows": windows, "max_windows": windows, "rounds": rounds})
        if self._context.settings.ab_baseline:
            self.recorded[-1].notes.append(
                "--ab-baseline: judged against the stored runs: single-request latency is timed once, "
                "by pytest-benchmark"
            )
        return measurement

    def record(self, measurement: Measurement, server: Server, *, name: str | None = None) -> None:
        """Record a measurement made elsewhere (judged against its baseline like ``measure``'s)."""
        self._record(measurement, server, name, {})

    def _record(
        self, measurement: Measurement, server: Server, name: str | None, windows: dict[str, float]
    ) -> None:
        baseline, notes = self._context.find_baseline(name)
        fingerprint = self._context.fingerprint(server)
        verdicts: list[MetricVerdict] = []
        if baseline is not None:  # one look: nothing is measured again
            alpha = per_verdict_look(self._alpha.next_call(), len(self.checks.gate), 1)
            verdicts = self._judge(baseline, measurement, fingerprint, alpha)
        deployment = self._context.deployment(server)
        self.recorded.append(Recorded(name, measurement, fingerprint, baseline, verdicts, notes, deployment,
                                      windows))

    def _judge(
        self,
        baseline: Baseline | None,
        measurement: Measurement,
        fingerprint: Mapping[str, Any],
        alpha: float,
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
            alpha=alpha,
            run_drift=self._context.settings.perf_run_drift,
            pooled=self._context.pooled_drift(baseline),
            speed_mismatch=self._context.settings.perf_speed_mismatch,
        )


def _latency_method(method: str) -> Method:
    """``method`` as a request_latency series; an unknown one is refused by LoadConfig with the fix."""
    return "classify" if method == "classify" else "regress" if method == "regress" else "predict"
