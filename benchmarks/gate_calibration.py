"""Calibration harness for the regression gate: the real judges on synthetic windows.

Real measurements (``benchmarks/gate_quality.py``) cost minutes per session, so they can show a
false-alarm rate of a few percent at best. This harness draws windows from a noise model of what a
perf test sees on this machine and runs the plugin's own judging loop on them thousands of times:

- ``fit``: estimates the model's parameters from ``gate_quality.py collect`` / ``collect-ab`` files and
  prints them next to the defaults (taken from docs/GATE.md's measurements, each with its figure);
  ``--out`` writes them for ``simulate --params``.
- ``simulate``: for a pull request of N perf tests with M gated metrics, per-verdict and per-PR
  false-alarm rates (A/A), detection at 0.5x, 1x and 2x the tolerance, seconds of measurement per
  verdict, for stored baselines with 1, 3 and 5 recorded runs and for --ab-baseline at concurrency 1
  (alternating requests) and 4 (interleaved windows); perf.compare's real coverage of its stated
  one-sided confidence at 5, 10 and 20 pairs; and whether the goals of issue #18 hold.

The noise model, on the log scale of each window's value (``badness``: log p50, or -log rps):

- within a run: an AR(1) series (stationary sd ``sd``, lag-1 autocorrelation ``rho``), a slow trend
  (a slope per run, sd ``trend_sd`` per window), and outlier windows (rate ``outlier_rate``, size
  ``outlier_log``; a neighbour's burst makes one server worse, a pair's ratio either way);
- between runs: a server process differs from another of the same deployment by ``process_sd``
  (stored path: each session starts its own servers) and a sitting (a day) from another by
  ``sitting_sd``; a stored baseline's runs come from one sitting (``make baselines``);
- paired paths: the window pairs' log ratios are their own series, plus a persistent offset between
  the two server processes (``offset_sd``) that no number of pairs averages out.

What runs is the plugin's code, not a copy: ``perf.settle.measure_until_settled`` with
``Limits.within`` / ``Limits.in_rounds`` (so the looks and their stopping are the plugin's), the
alpha split of ``gate.alpha_budget``, ``gate.judge.judge`` on a real ``Baseline``,
``gate.relative.judge_against_reference`` (with ``perf.beside.rps_from_latency`` when requests
alternate) and ``judge_relative``. Only the windows are synthetic.

    python benchmarks/gate_calibration.py fit ab_c1.json ab_c4.json --out fitted.json
    python benchmarks/gate_calibration.py simulate                       # defaults from docs/GATE.md
    python benchmarks/gate_calibration.py simulate --params fitted.json --trials 400
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pytest_tfserving.gate import evidence
from pytest_tfserving.gate.alpha_budget import AlphaSpender, SessionAlpha, per_verdict_look
from pytest_tfserving.gate.baselines import Baseline, summarize_run
from pytest_tfserving.gate.judge import judge
from pytest_tfserving.gate.relative import judge_against_reference, judge_relative
from pytest_tfserving.gate.run_drift import PooledDrift, RunDriftPools
from pytest_tfserving.gate.verdicts import (
    DEFAULT_INTERLEAVED_OFFSET,
    DEFAULT_PROCESS_OFFSET,
    DEFAULT_RUN_DRIFT,
    MetricVerdict,
)
from pytest_tfserving.load.results import Measurement, WindowSummary
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.perf.beside import FIRST_PAIRS, rps_from_latency
from pytest_tfserving.perf.settle import Limits, Sides, measure_until_settled

GATE = ("p50_ms", "rps")
REWARM_S = 0.2  # measure_interleaved's re-warm before each window
BUCKET_LOG = math.log(1.0202)  # Histogram buckets: a window p50 moves in 2 % steps
P50_MS, MEAN_OVER_P50 = 2.0, 1.1  # the synthetic deployment's level (the judges are scale-free)


# --- the noise model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """Window-to-window noise of one log series: one server's windows, or a pair's log ratios.

    Two metrics are drawn together: p50 and a second one (rps, or mean latency from which the plugin
    derives rps under alternating requests) with innovations correlated by ``corr`` and an sd
    ``ratio2`` times p50's; a burst hits both.
    """

    sd: float
    rho: float = 0.0
    outlier_rate: float = 0.0
    outlier_log: float = 0.0
    outlier_up: float = 1.0  # share of bursts that make the series worse
    trend_sd: float = 0.0
    corr: float = 0.8
    ratio2: float = 1.0


@dataclass(frozen=True)
class NoiseModel:
    """What a perf test sees here; ``sources`` says where each figure comes from."""

    window_s: float
    single: Series  # one server's windows at concurrency 1 (stored baselines)
    process_sd: float  # between server processes (sessions) of one sitting
    sitting_sd: float  # between sittings (days): a stored baseline's against the PR's
    alternating: Series  # pair log ratios, alternating requests (--ab-baseline, concurrency 1)
    alternating_offset: float  # persistent offset between two processes, alternating
    interleaved: Series  # pair log ratios, interleaved windows (concurrency > 1, perf.compare)
    interleaved_offset: float
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseModel:
        data = dict(data)
        for name in ("single", "alternating", "interleaved"):
            data[name] = Series(**data[name])
        return cls(**data)


def default_model() -> NoiseModel:
    """Parameters from docs/GATE.md's measurements on this VM (tiny CNN, embedded server, gRPC)."""
    return NoiseModel(
        window_s=0.5,
        single=Series(sd=0.113, rho=0.3, outlier_rate=0.10, outlier_log=math.log(3.0), outlier_up=1.0,
                      trend_sd=0.002, corr=0.8, ratio2=1.0),
        process_sd=0.24,
        sitting_sd=0.12,
        alternating=Series(sd=0.037, rho=0.2, outlier_rate=0.02, outlier_log=0.15, outlier_up=0.5,
                           trend_sd=0.0, corr=0.8, ratio2=1.0),
        alternating_offset=math.sqrt(0.0151**2 - 0.0048**2),
        interleaved=Series(sd=0.153, rho=0.2, outlier_rate=0.05, outlier_log=0.4, outlier_up=0.5,
                           trend_sd=0.0, corr=0.8, ratio2=1.0),
        interleaved_offset=math.sqrt(0.042**2 - 0.024**2),
        sources={
            "window_s": "the A/B measurements' windows (0.5 s)",
            "single.sd": "2026-11-25: window-interleaved pairs of identical deployments, sd of log ratios "
                         "0.16-0.25; one window 0.16/sqrt(2)",
            "single.rho": "not measured in docs/GATE.md: assumed",
            "single.outliers": "'one window in ten is sometimes hit by a neighbour (p50 several times "
                               "higher)': rate 0.10, x3",
            "single.trend_sd": "not measured: assumed",
            "process_sd": "third run: 20 run medians on 10 server instances, CV about 25 %",
            "sitting_sd": "fp32 ResNet50, 2026-11-25 vs 2026-12-02: means 0.168 apart in log, "
                          "0.168/sqrt(2)",
            "alternating.sd": "2026-12-02, concurrency 1: sd of window-pair log ratios 0.037",
            "alternating_offset": "2026-12-02: sd of A/A session means 1.51 %, window part 0.48 %",
            "interleaved.sd": "2026-12-02, concurrency 4: sd of window-pair log ratios 0.153",
            "interleaved_offset": "2026-12-02: sd of A/A session means 4.2 %, window part 2.4 %",
            "paired rho, outliers, corr, ratio2": "not measured in docs/GATE.md: assumed",
        },
    )


def load_model(path: str | None) -> NoiseModel:
    """A model written by ``fit --out``, or the defaults."""
    return NoiseModel.from_dict(json.loads(Path(path).read_text())) if path else default_model()


class Stream:
    """One run's windows, drawn one measurement at a time, so an extension continues the run."""

    BLOCK = 24  # windows drawn ahead at once (numpy per window would dominate the run time)

    def __init__(self, series: Series, rng: np.random.Generator, level: float = 0.0) -> None:
        self.series, self.rng, self.level = series, rng, level
        self.slope = float(rng.normal(0.0, series.trend_sd)) if series.trend_sd > 0 else 0.0
        self.state: tuple[float, float] | None = None
        self.index = 0
        self.ahead = np.empty((0, 2))

    def _draw(self, n: int) -> np.ndarray:
        s, rng = self.series, self.rng
        z = rng.standard_normal((n, 2))
        z[:, 1] = s.corr * z[:, 0] + math.sqrt(max(0.0, 1 - s.corr**2)) * z[:, 1]
        keep = math.sqrt(max(0.0, 1 - s.rho**2))
        rows = z.tolist()
        state = self.state
        for i, (e0, e1) in enumerate(rows):
            if state is not None:
                e0, e1 = s.rho * state[0] + keep * e0, s.rho * state[1] + keep * e1
            state = (e0, e1)
            rows[i] = [e0, e1]
        self.state = state
        out = np.asarray(rows) * np.array([s.sd, s.sd * s.ratio2])
        hit = rng.random(n) < s.outlier_rate
        up = np.where(rng.random(n) < s.outlier_up, 1.0, -1.0)
        out += (hit * up * s.outlier_log)[:, None]
        out += (self.level + self.slope * (self.index + np.arange(n)))[:, None]
        self.index += n
        return out

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` windows: shape (n, 2), badness (log scale) of p50 and of the second metric."""
        if len(self.ahead) < n:
            self.ahead = np.vstack([self.ahead, self._draw(max(n, self.BLOCK))])
        out, self.ahead = self.ahead[:n], self.ahead[n:]
        return out


# --- the judges' tail functions, fast -------------------------------------------------------------


@contextlib.contextmanager
def fast_tails(enabled: bool = True) -> Iterator[None]:
    """Run ``gate.evidence``'s ``quantile`` / ``upper_tail`` through the scipy.special ufuncs that
    scipy.stats' ``norm`` and ``t`` wrap (``ndtri``, ``stdtrit``, ``ndtr``, ``stdtr``): the same values,
    checked here on a grid before use, at a small fraction of the call cost, which otherwise
    dominates the run time. The judges' code is unchanged; ``simulate --scipy-stats`` keeps the originals."""
    from scipy import special

    def quantile(level: float, df: float) -> float:
        return float(special.ndtri(level)) if math.isinf(df) else float(special.stdtrit(df, level))

    def upper_tail(x: float, df: float) -> float:
        return float(special.ndtr(-x)) if math.isinf(df) else float(special.stdtr(df, -x))

    original = (evidence.quantile, evidence.upper_tail)
    for df in (1.0, 2.0, 3.7, 12.5, math.inf):
        for level in (0.5, 0.95, 0.99, 1 - 5e-5, 1 - 1e-7):
            if not math.isclose(quantile(level, df), original[0](level, df), rel_tol=1e-9, abs_tol=1e-12):
                raise RuntimeError(f"fast quantile differs from scipy.stats at level {level}, df {df}")
        for x in (-2.0, 0.0, 0.7, 4.0, 9.0):
            if not math.isclose(upper_tail(x, df), original[1](x, df), rel_tol=1e-9, abs_tol=1e-300):
                raise RuntimeError(f"fast upper tail differs from scipy.stats at {x}, df {df}")
    if enabled:
        evidence.quantile, evidence.upper_tail = quantile, upper_tail
    try:
        yield
    finally:
        evidence.quantile, evidence.upper_tail = original


# --- synthetic measurements --------------------------------------------------------------------------


def _window(i: int, window_s: float, p50: float, mean: float, rps: float) -> WindowSummary:
    return WindowSummary(start_s=i * window_s, duration_s=window_s, count=max(1, int(rps * window_s)),
                         errors=0, p50_ms=p50, p90_ms=p50 * 1.3, p95_ms=p50 * 1.5, p99_ms=p50 * 2.0,
                         max_ms=p50 * 3.0, mean_ms=mean, rps=rps)


def _measurement(windows: Sequence[WindowSummary], concurrency: int, window_s: float) -> Measurement:
    p50 = statistics.median(w.p50_ms for w in windows)  # totals: read by no judge, kept plausible
    mean = statistics.fmean(w.mean_ms for w in windows)
    rps = statistics.median(w.rps for w in windows)
    return Measurement(protocol="grpc", mode="closed", concurrency=concurrency, target_rps=None,
                       duration_s=window_s * len(windows), count=sum(w.count for w in windows), errors=0,
                       errors_by_status={}, p50_ms=p50, p90_ms=p50 * 1.3, p95_ms=p50 * 1.5,
                       p99_ms=p50 * 2.0, max_ms=p50 * 3.0, mean_ms=mean, rps=rps, windows=tuple(windows),
                       stable=True)


def _single_window(i: int, window_s: float, badness: np.ndarray, concurrency: int = 1) -> WindowSummary:
    """One server's window: p50 from the first badness, rps (and mean latency) from the second."""
    p50 = P50_MS * math.exp(badness[0])
    mean = P50_MS * MEAN_OVER_P50 * math.exp(badness[1])
    return _window(i, window_s, p50, mean, 1000.0 * concurrency / mean)


def run_until(stream: Stream, rule: StabilityRule, window_s: float) -> list[WindowSummary]:
    """Windows as ``load.runner.measure`` takes them: until ``rule`` is met or its maximum."""
    windows: list[WindowSummary] = []
    while len(windows) < rule.max_windows and not rule.is_stable(windows):
        windows.append(_single_window(len(windows), window_s, stream.take(1)[0]))
    return windows


# --- one perf test, as the plugin runs it ------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The plugin's settings the simulation uses (``--perf-*``)."""

    warmup_s: float = 2.0
    min_windows: int = 6
    max_windows: int = 20
    run_drift: float = DEFAULT_RUN_DRIFT
    gate: tuple[str, ...] = GATE

    def rule(self) -> StabilityRule:
        return StabilityRule(min_windows=self.min_windows, max_windows=self.max_windows)


@dataclass(frozen=True)
class TestOutcome:
    """One test's final verdicts (per gated metric) and the seconds it measured for them."""

    verdicts: tuple[str, ...]
    seconds: float
    windows: int

    @property
    def regression(self) -> bool:
        return "regression" in self.verdicts


def _recorded_baseline(model: NoiseModel, rng: np.random.Generator, history: int, sitting: float,
                       settings: Settings, each_sitting: bool) -> Baseline:
    """``history`` runs recorded by --update-baselines, each on its own server process; the newest
    keeps its windows, every run its medians (``Baseline.runs``)."""
    runs = []
    for _ in range(history):
        level = (float(rng.normal(0, model.sitting_sd)) if each_sitting else sitting)
        level += float(rng.normal(0, model.process_sd))
        windows = run_until(Stream(model.single, rng, level), settings.rule(), model.window_s)
        runs.append(_measurement(windows, 1, model.window_s))
    summaries = tuple(summarize_run(m, f"run {i}") for i, m in enumerate(runs)) if history > 1 else ()
    return Baseline(nodeid="sim::test", measurement=runs[-1], fingerprint={}, created="", runs=summaries)


def stored_test(model: NoiseModel, rng: np.random.Generator, *, baseline: Baseline,
                pooled: dict[str, PooledDrift], tolerance: float, effect: float, call_alpha: float,
                settings: Settings, sitting_now: float) -> TestOutcome:
    """``perf.measure`` against a stored baseline (``PerfHandle.measure`` without a reference), with the
    drift pooled over the session's baselines (``RunDriftPools``) as the plugin passes it."""
    level = sitting_now + float(rng.normal(0, model.process_sd)) + math.log1p(effect)
    stream = Stream(model.single, rng, level)
    spent = [0.0]

    def alone(run: StabilityRule, warmup: float) -> Sides:
        windows = run_until(stream, run, model.window_s)
        spent[0] += warmup + len(windows) * model.window_s
        return (_measurement(windows, 1, model.window_s),)

    limits = Limits.within(settings.rule())
    look_alpha = per_verdict_look(call_alpha, len(settings.gate), limits.looks())

    def verdicts_of(sides: Sides) -> list[MetricVerdict]:
        return judge(baseline, sides[0], None, gate=settings.gate, tolerance=tolerance, alpha=look_alpha,
                     run_drift=settings.run_drift, pooled=pooled)

    (measured,), verdicts = measure_until_settled(alone, verdicts_of, limits, settings.warmup_s)
    return TestOutcome(tuple(v.verdict for v in verdicts), spent[0], len(measured.windows))


def paired_test(model: NoiseModel, rng: np.random.Generator, *, concurrency: int, tolerance: float,
                effect: float, call_alpha: float, settings: Settings, replicas: int = 1) -> TestOutcome:
    """``perf.measure`` under --ab-baseline (``perf.beside.measure_beside``): the server alone first
    (the recorded figures), then the pairs, judged pairwise while unsettled.

    ``replicas`` (--ab-replicas): processes per side; each process sits at its own level (sd
    ``offset_sd / sqrt(2)``, so two of them differ by ``offset_sd``), and pair ``i`` runs on replica
    ``i mod replicas`` of each side, as ``measure_beside`` rotates them."""
    alternate = concurrency == 1
    series = model.alternating if alternate else model.interleaved
    offset_sd = model.alternating_offset if alternate else model.interleaved_offset
    if replicas == 1:  # the draw as before, so m = 1 reproduces the earlier tables
        offsets = np.array([float(rng.normal(0, offset_sd))])
    else:
        levels = rng.normal(0, offset_sd / math.sqrt(2), (2, replicas))
        offsets = levels[1] - levels[0]
    pairs = Stream(series, rng, math.log1p(effect))
    reference = Stream(model.single, rng, 0.0)
    w = model.window_s
    alone = run_until(Stream(model.single, rng, 0.0), settings.rule(), w)
    spent = [settings.warmup_s + len(alone) * w]
    counted = [0]

    def rounds(windows: StabilityRule, warmup: float) -> Sides:
        n = windows.max_windows
        ref_b, d = reference.take(n), pairs.take(n)
        ref, cur = [], []
        for i in range(n):
            k = counted[0] + i
            d[i] += offsets[k % replicas]
            r = _single_window(k, w, ref_b[i], concurrency)
            p50, mean = r.p50_ms * math.exp(d[i, 0]), r.mean_ms * math.exp(d[i, 1])
            # interleaved: rps measured (badness = -log rps ratio); alternating: rps_from_latency
            rps = r.rps * math.exp(-d[i, 1])
            ref.append(r)
            cur.append(_window(k, w, p50, mean, rps))
        counted[0] += n
        # The first look warms every replica (alternating: the warm-up rotates over them for
        # replicas x warmup; interleaved: each replica of each side its own warm-up and window).
        warm = warmup * replicas if (alternate and counted[0] == n) else warmup
        spent[0] += (warm + n * w) if alternate else 2 * replicas * (warmup + w) + 2 * n * (w + REWARM_S)
        return _measurement(ref, concurrency, w), _measurement(cur, concurrency, w)

    first = min(settings.max_windows, max(settings.min_windows, FIRST_PAIRS))
    limits = Limits.within(settings.rule(), first=StabilityRule(min_windows=first, max_windows=first))
    look_alpha = per_verdict_look(call_alpha, len(settings.gate), limits.looks())

    def verdicts_of(sides: Sides) -> list[MetricVerdict]:
        ref, cur = sides
        if alternate:
            ref, cur = rps_from_latency(ref), rps_from_latency(cur)
        return judge_against_reference(
            ref, cur, gate=settings.gate, tolerance=tolerance, alpha=look_alpha,
            offset_sd=DEFAULT_PROCESS_OFFSET if alternate else DEFAULT_INTERLEAVED_OFFSET,
            replicas=replicas,
        )

    (_, cur), verdicts = measure_until_settled(rounds, verdicts_of, limits, settings.warmup_s)
    return TestOutcome(tuple(v.verdict for v in verdicts), spent[0], len(cur.windows))


# --- pull requests and rates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """A way the gate judges: stored baselines with ``history`` runs, or --ab-baseline at ``concurrency``."""

    kind: str  # "stored" | "ab"
    history: int = 0
    concurrency: int = 1
    replicas: int = 1

    @property
    def label(self) -> str:
        if self.kind == "stored":
            return f"stored, {self.history} run{'s' if self.history > 1 else ''}"
        pairing = "alternating" if self.concurrency == 1 else "interleaved"
        more = f", {self.replicas} processes per side" if self.replicas > 1 else ""
        return f"--ab-baseline c{self.concurrency} ({pairing}{more})"


def rng_for(seed: int, *labels: object) -> np.random.Generator:
    """A generator per table row, so a row's numbers do not depend on which other rows ran."""
    key = zlib.crc32("|".join(map(str, labels)).encode())
    return np.random.default_rng([seed, key])


def stored_pr(model: NoiseModel, rng: np.random.Generator, mode: Mode, *, tests: int, judged: int,
              tolerance: float, effect: float, test_alpha: float, settings: Settings,
              sittings: tuple[float, float], each_sitting: bool) -> list[TestOutcome]:
    """A session against stored baselines: the ``tests`` baselines recorded (in the baseline's sitting,
    or each run in its own with ``each_sitting``), their drift pooled as the plugin pools it, then the
    first ``judged`` tests measured in this session's sitting."""
    baselines = [_recorded_baseline(model, rng, mode.history, sittings[0], settings, each_sitting)
                 for _ in range(tests)]
    pools = RunDriftPools.from_baselines(baselines)
    return [stored_test(model, rng, baseline=baseline, pooled=pools.for_baseline(baseline),
                        tolerance=tolerance, effect=effect, call_alpha=AlphaSpender(test_alpha).next_call(),
                        settings=settings, sitting_now=sittings[1])
            for baseline in baselines[:judged]]


def ab_test(model: NoiseModel, rng: np.random.Generator, mode: Mode, *, tolerance: float, effect: float,
            test_alpha: float, settings: Settings) -> TestOutcome:
    call_alpha = AlphaSpender(test_alpha).next_call()  # one judged call per test
    return paired_test(model, rng, concurrency=mode.concurrency, tolerance=tolerance, effect=effect,
                       call_alpha=call_alpha, settings=settings, replicas=mode.replicas)


def session_tests(model: NoiseModel, rng: np.random.Generator, mode: Mode, *, tests: int, judged: int,
                  tolerance: float, effect: float, test_alpha: float, settings: Settings,
                  sittings: tuple[float, float], each_sitting: bool) -> list[TestOutcome]:
    """The first ``judged`` of a session's ``tests`` perf tests (the sitting shared by all)."""
    if mode.kind == "stored":
        return stored_pr(model, rng, mode, tests=tests, judged=judged, tolerance=tolerance, effect=effect,
                         test_alpha=test_alpha, settings=settings, sittings=sittings,
                         each_sitting=each_sitting)
    return [ab_test(model, rng, mode, tolerance=tolerance, effect=effect, test_alpha=test_alpha,
                    settings=settings) for _ in range(judged)]


@dataclass
class Tally:
    """Counts behind one table row."""

    verdicts: int = 0
    regressions: int = 0
    inconclusive: int = 0
    tests: int = 0
    failed_tests: int = 0
    prs: int = 0
    failed_prs: int = 0
    seconds: float = 0.0

    def add(self, outcome: TestOutcome) -> None:
        self.verdicts += len(outcome.verdicts)
        self.regressions += outcome.verdicts.count("regression")
        self.inconclusive += outcome.verdicts.count("inconclusive")
        self.tests += 1
        self.failed_tests += outcome.regression
        self.seconds += outcome.seconds


def simulate_prs(model: NoiseModel, mode: Mode, *, tolerance: float, effect: float, prs: int, tests: int,
                 alpha: float, settings: Settings, seed: int, each_sitting: bool = False) -> Tally:
    """``prs`` pull requests of ``tests`` perf tests each, every test changed by ``effect`` (0: A/A).

    One session is one sitting: its tests share the day's drift, and the stored baselines share the
    sitting they were recorded in (``each_sitting``: every recorded run from its own sitting)."""
    rng = rng_for(seed, mode.label, tolerance, effect, prs, tests, each_sitting)
    test_alpha = SessionAlpha(alpha, tests).per_test()
    tally = Tally()
    for _ in range(prs):
        sittings = (float(rng.normal(0, model.sitting_sd)), float(rng.normal(0, model.sitting_sd)))
        outcomes = session_tests(model, rng, mode, tests=tests, judged=tests, tolerance=tolerance,
                                 effect=effect, test_alpha=test_alpha, settings=settings, sittings=sittings,
                                 each_sitting=each_sitting)
        for outcome in outcomes:
            tally.add(outcome)
        tally.prs += 1
        tally.failed_prs += any(o.regression for o in outcomes)
    return tally


def simulate_tests(model: NoiseModel, mode: Mode, *, tolerance: float, effect: float, trials: int,
                   tests: int, alpha: float, settings: Settings, seed: int,
                   each_sitting: bool = False) -> Tally:
    """``trials`` tests, each judged with the alpha it gets in a PR of ``tests`` tests. A stored
    baseline's test runs in sessions of ``tests`` (their baselines pool the drift), the last session
    judging only as many as remain; an --ab-baseline test has nothing to share, one per session."""
    rng = rng_for(seed, mode.label, tolerance, effect, trials, tests, each_sitting, "tests")
    test_alpha = SessionAlpha(alpha, tests).per_test()
    per_session = tests if mode.kind == "stored" else 1
    tally = Tally()
    while tally.tests < trials:
        sittings = (float(rng.normal(0, model.sitting_sd)), float(rng.normal(0, model.sitting_sd)))
        judged = min(per_session, trials - tally.tests)
        for outcome in session_tests(model, rng, mode, tests=per_session, judged=judged, tolerance=tolerance,
                                     effect=effect, test_alpha=test_alpha, settings=settings,
                                     sittings=sittings, each_sitting=each_sitting):
            tally.add(outcome)
    return tally


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided interval for a binomial rate; for 0 of n the upper end is 1 - (a/2)^(1/n)."""
    from scipy.stats import beta

    if n <= 0:
        return 0.0, 1.0
    a = 1 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def rate_text(k: int, n: int) -> str:
    low, high = clopper_pearson(k, n)
    return f"{k}/{n} = {k / n:.1%} [{low:.1%}, {high:.1%}]" if n else "-"


def compare_coverage(model: NoiseModel, pairs: int, trials: int, alpha: float, seed: int) -> tuple[int, int]:
    """How often ``judge_relative``'s one-sided ``1 - alpha`` bounds miss the true ratio (upper, lower)
    with ``pairs`` interleaved window pairs (perf.compare, order A B B A)."""
    rng = rng_for(seed, "compare", pairs, trials, alpha)
    w = model.window_s
    miss_upper = miss_lower = 0
    for _ in range(trials):
        offset = float(rng.normal(0, model.interleaved_offset))
        d = Stream(model.interleaved, rng, offset).take(pairs)
        ref_b = Stream(model.single, rng, 0.0).take(pairs)
        b = [_single_window(i, w, ref_b[i]) for i in range(pairs)]
        a = [_window(i, w, x.p50_ms * math.exp(d[i, 0]), x.mean_ms, x.rps) for i, x in enumerate(b)]
        verdict = judge_relative(_measurement(a, 1, w), _measurement(b, 1, w), "p50_ms", max_ratio=1.0,
                                 alpha=alpha, min_windows=min(pairs, 5))
        assert verdict.ci_low is not None and verdict.ci_high is not None
        miss_upper += verdict.ci_high < 1.0
        miss_lower += verdict.ci_low > 1.0
    return miss_upper, miss_lower


# --- fitting the model to real measurements ----------------------------------------------------------


@dataclass(frozen=True)
class SeriesFit:
    """A fitted ``Series`` plus what it rests on."""

    series: Series
    windows: int
    runs: int


def _robust_line(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """A straight line through a run fitted without its outliers: (residuals, outlier mask, slope).

    An outlier lies more than 5 robust sds (the MAD, floored at one histogram step) off the line
    fitted to the other windows; three passes settle it."""
    t = np.arange(x.size, dtype=float)
    keep = np.ones(x.size, dtype=bool)
    slope = 0.0
    resid = x - np.median(x)
    for _ in range(3):
        slope, intercept = np.polyfit(t[keep], x[keep], 1)
        resid = x - (intercept + slope * t)
        centre = np.median(resid[keep])
        mad = max(1.4826 * float(np.median(np.abs(resid[keep] - centre))), BUCKET_LOG)
        keep = np.abs(resid - centre) <= 5 * mad
    return resid, ~keep, float(slope)


def _flag_outliers(x: np.ndarray) -> np.ndarray:
    return _robust_line(x)[1]


LONG_RUN = 20  # windows a run needs before its autocorrelation and slope are used (bias, noise)


def fit_series(runs: Sequence[np.ndarray]) -> SeriesFit:
    """Fit a ``Series`` to runs of (n, 2) badness values (p50, second metric), one array per run.

    Per run, a straight line fitted without the outliers (``_robust_line``); the outliers' rate,
    size and sign; on the residuals with outliers set to the line, the sd, the two metrics'
    correlation and sd ratio; from runs of at least ``LONG_RUN`` windows (all runs when none is that
    long) the pooled lag-1 autocorrelation (bias-corrected for the line fitted, ``+ (2 + 4 rho) / n``,
    right to about 0.01 from 30 windows) and the trend's sd (the slopes' spread beyond what the AR
    noise gives a slope).
    """
    runs = [np.asarray(r, dtype=float) for r in runs if len(r) >= 5]
    if not runs:
        raise ValueError("need runs of at least 5 windows to fit window noise")
    long_enough = any(len(r) >= LONG_RUN for r in runs)
    flagged = total = up = 0
    sizes: list[float] = []
    resid: list[np.ndarray] = []
    slopes: list[float] = []
    sxx: list[float] = []
    lag_num = lag_den = 0.0
    lag_windows: list[int] = []
    for run in runs:
        r0, hit, slope = _robust_line(run[:, 0])
        t = np.arange(len(run), dtype=float)
        line1 = np.polyfit(t[~hit], run[~hit, 1], 1)
        r1 = run[:, 1] - np.polyval(line1, t)
        flagged += int(hit.sum())
        total += len(run)
        sizes.extend(np.abs(r0[hit]).tolist())
        up += int((r0[hit] > 0).sum())
        r0, r1 = np.where(hit, 0.0, r0), np.where(hit, 0.0, r1)
        resid.append(np.column_stack([r0, r1]))
        if len(run) >= LONG_RUN or not long_enough:
            slopes.append(slope)
            sxx.append(float(((t - t.mean()) ** 2).sum()))
            clean = ~hit[1:] & ~hit[:-1]  # neighbours, neither an outlier
            lag_num += float((r0[1:] * r0[:-1])[clean].sum())
            lag_den += float(((r0[1:] ** 2 + r0[:-1] ** 2) / 2)[clean].sum())
            lag_windows.append(len(run))
    stacked = np.vstack(resid)
    dof = sum(len(r) - 2 for r in resid) - flagged
    sd0 = math.sqrt(float((stacked[:, 0] ** 2).sum()) / dof)
    sd1 = math.sqrt(float((stacked[:, 1] ** 2).sum()) / dof)
    raw = lag_num / lag_den if lag_den > 0 else 0.0
    rho = min(0.95, max(-0.95, raw + (2 + 4 * raw) / float(np.mean(lag_windows))))
    inflate = (1 + rho) / (1 - rho)
    expected = [sd0**2 * inflate / s for s in sxx]
    excess = float(np.var(slopes, ddof=1)) - float(np.mean(expected)) if len(slopes) > 1 else 0.0
    corr = float(np.corrcoef(stacked[:, 0], stacked[:, 1])[0, 1]) if sd0 > 0 and sd1 > 0 else 0.0
    series = Series(
        sd=sd0, rho=rho, outlier_rate=flagged / total,
        outlier_log=float(np.median(sizes)) if sizes else 0.0,
        outlier_up=up / flagged if flagged else 1.0,
        trend_sd=math.sqrt(excess) if excess > 0 else 0.0,
        corr=corr if math.isfinite(corr) else 0.0, ratio2=sd1 / sd0 if sd0 > 0 else 1.0,
    )
    return SeriesFit(series, total, len(runs))


def between_sd(groups: Sequence[np.ndarray], series: Series) -> float:
    """The sd of a level shared by each group's windows (a process, a pair of processes), beyond
    what the window noise gives a group's mean: ``sd^2 (1 + rho) / (1 - rho) / n`` from the AR(1)
    part and ``(trend_sd (n - 1) / 2)^2`` from the trend (``Stream`` starts a run's trend at 0)."""
    means, noise = [], []
    inflate = (1 + series.rho) / (1 - series.rho)
    for g in groups:
        x = np.asarray(g, dtype=float)
        x = x[~_flag_outliers(x)]
        if x.size >= 3:
            means.append(float(x.mean()))
            noise.append(series.sd**2 * inflate / x.size + (series.trend_sd * (len(g) - 1) / 2) ** 2)
    if len(means) < 3:
        return float("nan")
    excess = float(np.var(means, ddof=1)) - float(np.mean(noise))
    return math.sqrt(excess) if excess > 0 else 0.0


def _ab_series(data: dict[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray],
                                               list[np.ndarray]]:
    """From a collect-ab file: pair log ratios per (session, role), reference windows per (session,
    role), the A/A ratios' p50 per session, and the reference p50 per session (one process each)."""
    alternate = data.get("pairing", "interleave") == "alternate"
    pairs, singles, aa, per_session = [], [], [], []
    for session in data["sessions"]:
        levels: list[float] = []
        for role, sides in session["roles"].items():
            ref, cand = sides["reference"], sides["candidate"]
            n = min(len(ref), len(cand))
            rows_d, rows_s = [], []
            for r, c in zip(ref[:n], cand[:n], strict=True):
                if min(r["p50_ms"], c["p50_ms"], r["mean_ms"], c["mean_ms"], r["rps"], c["rps"]) <= 0:
                    continue
                second = (math.log(c["mean_ms"] / r["mean_ms"]) if alternate
                          else -math.log(c["rps"] / r["rps"]))
                rows_d.append((math.log(c["p50_ms"] / r["p50_ms"]), second))
                rows_s.append((math.log(r["p50_ms"]), -math.log(r["rps"])))
            if len(rows_d) >= 5:
                pairs.append(np.asarray(rows_d))
                singles.append(np.asarray(rows_s))
                levels.extend(x[0] for x in rows_s)
                if role == "base":
                    aa.append(np.asarray(rows_d)[:, 0])
        if levels:
            per_session.append(np.asarray(levels))
    return pairs, singles, aa, per_session


def _collect_series(data: dict[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """From a collect file: one server's windows per run, and the base runs' p50 per round (process)."""
    runs: list[np.ndarray] = []
    per_round: dict[int, list[float]] = {}
    for run in data["runs"]:
        windows = run["measurement"]["windows"]
        rows = [(math.log(w["p50_ms"]), -math.log(w["rps"])) for w in windows
                if w["p50_ms"] > 0 and w["rps"] > 0]
        if len(rows) >= 5:
            x = np.asarray(rows)
            x[:, 0] -= np.median(x[:, 0])  # roles differ by their model: compare within a run
            x[:, 1] -= np.median(x[:, 1])
            runs.append(x)
        if run["role"] == "base" and rows:
            per_round.setdefault(run["round"], []).extend(r[0] for r in rows)
    return runs, [np.asarray(v) for v in per_round.values()]


@dataclass
class FitReport:
    """The fitted model and a line per parameter group saying what it rests on."""

    model: NoiseModel
    lines: list[str]


def fit_files(paths: Sequence[Path], base: NoiseModel | None = None) -> FitReport:
    """Fit what the files can show; keep ``base``'s (the defaults') figures for the rest, and say so."""
    model = base or default_model()
    sources = dict(model.sources)
    lines: list[str] = []
    single_runs: list[np.ndarray] = []
    process_groups: list[np.ndarray] = []
    file_levels: list[float] = []
    windows_s: set[float] = set()
    for path in paths:
        data = json.loads(Path(path).read_text())
        windows_s.add(float(data["window_s"]))
        if data.get("mode") == "ab":
            pairs, singles, aa, per_session = _ab_series(data)
            concurrency = int(data.get("concurrency", 1))
            alternate = data.get("pairing", "interleave") == "alternate"
            fitted = fit_series(pairs)
            offset = between_sd(aa, replace(fitted.series, ratio2=1.0))
            name = "alternating" if alternate else "interleaved"
            if alternate:
                model = replace(model, alternating=fitted.series)
            else:
                model = replace(model, interleaved=fitted.series)
            if math.isfinite(offset):
                if alternate:
                    model = replace(model, alternating_offset=offset)
                else:
                    model = replace(model, interleaved_offset=offset)
                sources[f"{name}_offset"] = f"fit: {path} ({len(aa)} A/A sessions)"
            sources[f"{name}.*"] = f"fit: {path} ({fitted.windows} pairs, {fitted.runs} session-roles)"
            lines.append(f"{path}: {name} pairing at concurrency {concurrency}, {len(data['sessions'])} "
                         f"sessions, {fitted.windows} window pairs; A/A sessions {len(aa)}")
            if alternate:  # one server's windows at concurrency 1: the stored path's noise
                single_runs.extend(singles)
                process_groups.extend(per_session)
                file_levels.append(float(np.median(np.concatenate(per_session))))
        else:
            runs, per_round = _collect_series(data)
            single_runs.extend(runs)
            process_groups.extend(per_round)
            if per_round:
                file_levels.append(float(np.median(np.concatenate(per_round))))
            lines.append(f"{path}: stored-baseline runs, {len(runs)} runs on {len(per_round)} servers")
    if single_runs:
        fitted = fit_series(single_runs)
        model = replace(model, single=fitted.series)
        sources["single.*"] = f"fit: {fitted.windows} windows of one server in {fitted.runs} runs"
        process = between_sd(process_groups, fitted.series)
        if math.isfinite(process):
            model = replace(model, process_sd=process)
            sources["process_sd"] = f"fit: {len(process_groups)} server processes (sessions)"
        if len(file_levels) >= 2:
            spread = float(np.std(file_levels, ddof=1))
            sitting = math.sqrt(max(0.0, spread**2 - model.process_sd**2 / max(1, len(process_groups))))
            model = replace(model, sitting_sd=sitting)
            sources["sitting_sd"] = f"fit: {len(file_levels)} files (sittings)"
        else:
            lines.append("sitting_sd: one sitting in the data, kept from the defaults")
    if len(windows_s) == 1:
        model = replace(model, window_s=windows_s.pop())
        sources["window_s"] = "the files' window length"
    elif windows_s:
        lines.append(f"files with different window lengths {sorted(windows_s)}: window_s kept")
    return FitReport(replace(model, sources=sources), lines)


def pessimistic(a: NoiseModel, b: NoiseModel) -> NoiseModel:
    """The noisier of two models, parameter by parameter (sds, rates, sizes, |rho|)."""

    def worse(x: Series, y: Series) -> Series:
        return Series(sd=max(x.sd, y.sd), rho=max(x.rho, y.rho),
                      outlier_rate=max(x.outlier_rate, y.outlier_rate),
                      outlier_log=max(x.outlier_log, y.outlier_log),
                      outlier_up=max(x.outlier_up, y.outlier_up), trend_sd=max(x.trend_sd, y.trend_sd),
                      corr=min(x.corr, y.corr), ratio2=max(x.ratio2, y.ratio2))

    return NoiseModel(
        window_s=a.window_s, single=worse(a.single, b.single), process_sd=max(a.process_sd, b.process_sd),
        sitting_sd=max(a.sitting_sd, b.sitting_sd), alternating=worse(a.alternating, b.alternating),
        alternating_offset=max(a.alternating_offset, b.alternating_offset),
        interleaved=worse(a.interleaved, b.interleaved),
        interleaved_offset=max(a.interleaved_offset, b.interleaved_offset),
        sources={"*": "the larger of the two models' figures, parameter by parameter"},
    )


def model_table(models: dict[str, NoiseModel]) -> list[str]:
    """The models side by side, one parameter a row."""
    names = list(models)
    rows = [f"| parameter | {' | '.join(names)} |", "|---|" + "---|" * len(names)]

    def value(model: NoiseModel, key: str) -> float:
        target: Any = model
        for part in key.split("."):
            target = getattr(target, part)
        return float(target)

    keys = ["window_s"]
    for name in ("single", "alternating", "interleaved"):
        keys += [f"{name}.{attr}" for attr in ("sd", "rho", "outlier_rate", "outlier_log", "outlier_up",
                                                "trend_sd", "corr", "ratio2")]
        keys += ["process_sd", "sitting_sd"] if name == "single" else [f"{name}_offset"]
    for key in keys:
        rows.append(f"| {key} | " + " | ".join(f"{value(m, key):.4f}" for m in models.values()) + " |")
    return rows


# --- the printed report ------------------------------------------------------------------------------


@dataclass
class Report:
    """What ``simulate`` found, kept for the goal lines."""

    aa: dict[tuple[str, float], Tally] = field(default_factory=dict)
    detect: dict[tuple[str, float, float], Tally] = field(default_factory=dict)


def _print(lines: Iterable[str]) -> None:
    for line in lines:
        print(line, flush=True)


def simulate(args: argparse.Namespace) -> Report:
    model = load_model(args.params)
    settings = Settings(warmup_s=args.warmup, min_windows=args.min_windows, max_windows=args.max_windows,
                        run_drift=args.run_drift, gate=tuple(args.gate))
    modes = [Mode("stored", history=h) for h in args.histories]
    modes += [Mode("ab", concurrency=c, replicas=m) for c in args.concurrency for m in args.replicas]
    t0 = time.monotonic()
    _print([
        f"model: {args.params or 'defaults (docs/GATE.md)'}; window {model.window_s} s, warm-up "
        f"{settings.warmup_s} s, windows {settings.min_windows}..{settings.max_windows}, --perf-run-drift "
        f"{settings.run_drift}",
        f"PR: {args.tests} perf tests x {len(settings.gate)} gated metrics ({', '.join(settings.gate)}), "
        f"--perf-alpha {args.alpha}; seed {args.seed}; {args.trials} PRs (A/A) and {args.trials} tests "
        "per effect; 95 % Clopper-Pearson intervals",
        f"stored baselines: runs recorded in {'separate sittings' if args.each_sitting else 'one sitting'}",
        f"looks per verdict (perf.settle.Limits): {looks_line(settings)}",
    ])
    report = Report()
    if modes:
        aa_table(args, model, settings, modes, report)
        detection_table(args, model, settings, modes, report)
    if args.compare_pairs:
        compare_table(args, model)
    goals(args, model, settings, report)
    print(f"\n({time.monotonic() - t0:.0f} s)")
    return report


def aa_table(args: argparse.Namespace, model: NoiseModel, settings: Settings, modes: list[Mode],
             report: Report) -> None:
    _print(["", "A/A: unchanged pull requests",
            "| path | tol | false alarms per verdict | inconclusive per verdict | PRs with a false alarm "
            "| s/verdict |", "|---|---|---|---|---|---|"])
    for mode in modes:
        for tol in args.tolerances:
            tally = simulate_prs(model, mode, tolerance=tol, effect=0.0, prs=args.trials, tests=args.tests,
                                 alpha=args.alpha, settings=settings, seed=args.seed,
                                 each_sitting=args.each_sitting)
            report.aa[(mode.label, tol)] = tally
            print(f"| {mode.label} | {tol:.0%} | {rate_text(tally.regressions, tally.verdicts)} | "
                  f"{tally.inconclusive / tally.verdicts:.1%} | {rate_text(tally.failed_prs, tally.prs)} | "
                  f"{tally.seconds / tally.tests:.1f} |", flush=True)


def detection_table(args: argparse.Namespace, model: NoiseModel, settings: Settings, modes: list[Mode],
                    report: Report) -> None:
    _print(["", "Detection: every test's p50 worse by the given multiple of its tolerance (rps down to "
            "match); detected = the test reports a regression",
            "| path | tol | 0.5x tol | 1x tol | 2x tol | s/verdict at 2x |", "|---|---|---|---|---|---|"])
    for mode in modes:
        for tol in args.tolerances:
            cells = []
            for multiple in (0.5, 1.0, 2.0):
                tally = simulate_tests(model, mode, tolerance=tol, effect=multiple * tol, trials=args.trials,
                                       tests=args.tests, alpha=args.alpha, settings=settings, seed=args.seed,
                                       each_sitting=args.each_sitting)
                report.detect[(mode.label, tol, multiple * tol)] = tally
                cells.append(rate_text(tally.failed_tests, tally.tests))
            print(f"| {mode.label} | {tol:.0%} | {' | '.join(cells)} | {tally.seconds / tally.tests:.1f} |",
                  flush=True)


def compare_table(args: argparse.Namespace, model: NoiseModel) -> None:
    trials = args.compare_trials or 4 * args.trials
    _print(["", f"perf.compare: coverage of its one-sided {1 - args.compare_alpha:.0%} bounds (interleaved "
            f"pairs, {trials} trials each; a bound misses when the true ratio lies beyond it; "
            f"stated miss rate {args.compare_alpha:.0%} per side)",
            "| pairs | upper bound misses | lower bound misses |", "|---|---|---|"])
    for pairs in args.compare_pairs:
        upper, lower = compare_coverage(model, pairs, trials, args.compare_alpha, args.seed)
        print(f"| {pairs} | {rate_text(upper, trials)} | {rate_text(lower, trials)} |", flush=True)


def looks_line(settings: Settings) -> str:
    """How many times each judged call may look, as the plugin's ``Limits`` count them."""
    first = min(settings.max_windows, max(settings.min_windows, FIRST_PAIRS))
    ab = Limits.within(settings.rule(), first=StabilityRule(min_windows=first, max_windows=first))
    return (f"stored {Limits.within(settings.rule()).looks()}, --ab-baseline {ab.looks()} (first {first} "
            f"pairs), perf.compare {Limits.in_rounds(6, 18).looks()} (6 rounds, up to 18)")


def goals(args: argparse.Namespace, model: NoiseModel, settings: Settings, report: Report) -> None:
    """Issue #18's goals: per-PR false alarms <= 1 %; --ab-baseline at concurrency 1 detects +5 % p50
    >= 80 % and +10 % >= 95 % within 60 s. The tolerance is in the test, so the second goal is looked
    for over ``--goal-tolerances`` as well as the table's."""
    print("\nGoals")
    for (label, tol), tally in report.aa.items():
        low, high = clopper_pearson(tally.failed_prs, tally.prs)
        state = "met" if high <= 0.01 else ("NOT met" if low > 0.01 else "undecided at this trial count")
        print(f"- per-PR false alarms <= 1 %, {label}, tol {tol:.0%}: "
              f"{rate_text(tally.failed_prs, tally.prs)}: {state}")
    if 1 not in args.concurrency:
        return
    ab1 = Mode("ab", concurrency=1)
    print("| --ab-baseline c1 tol | PRs with a false alarm | +5 % p50 detected | +10 % p50 detected | "
          "s/verdict (+10 %) | both detection goals |")
    print("|---|---|---|---|---|---|")
    met = []
    for tol in sorted(set(args.goal_tolerances) | set(args.tolerances)):
        aa = report.aa.get((ab1.label, tol)) or simulate_prs(
            model, ab1, tolerance=tol, effect=0.0, prs=args.trials, tests=args.tests, alpha=args.alpha,
            settings=settings, seed=args.seed)
        found = []
        for effect in (0.05, 0.10):
            tally = report.detect.get((ab1.label, tol, effect)) or simulate_tests(
                model, ab1, tolerance=tol, effect=effect, trials=args.trials, tests=args.tests,
                alpha=args.alpha, settings=settings, seed=args.seed)
            found.append(tally)
        seconds = found[1].seconds / found[1].tests
        ok = (found[0].failed_tests >= 0.8 * found[0].tests and found[1].failed_tests >= 0.95 * found[1].tests
              and seconds <= 60)
        if ok:
            met.append(tol)
        print(f"| {tol:.0%} | {rate_text(aa.failed_prs, aa.prs)} | "
              f"{rate_text(found[0].failed_tests, found[0].tests)} | "
              f"{rate_text(found[1].failed_tests, found[1].tests)} | {seconds:.1f} | "
              f"{'met' if ok else 'not met'} |", flush=True)
    where = "not met at any tolerance tried"
    if met:
        where = "met at tolerance " + ", ".join(f"{t:.0%}" for t in met)
    print(f"- --ab-baseline c1 detection goals (+5 % >= 80 %, +10 % >= 95 %, <= 60 s) with {args.tests} "
          f"tests in the PR: {where}")


def replicas_scan(args: argparse.Namespace) -> None:
    """--ab-replicas: per-PR false alarms and detection of +5 % and +10 % p50 with ``m`` server
    processes per side, at each concurrency and tolerance; the goal line per row (concurrency 1:
    +5 % >= 80 %, +10 % >= 95 %, <= 60 s, per-PR false alarms <= 1 %)."""
    model = load_model(args.params)
    settings = Settings(warmup_s=args.warmup, min_windows=args.min_windows, max_windows=args.max_windows,
                        run_drift=args.run_drift, gate=tuple(args.gate))
    t0 = time.monotonic()
    _print([
        f"model: {args.params or 'defaults (docs/GATE.md)'}; window {model.window_s} s, warm-up "
        f"{settings.warmup_s} s, pairs {FIRST_PAIRS} then up to {settings.max_windows}",
        f"PR: {args.tests} perf tests x {len(settings.gate)} gated metrics, --perf-alpha {args.alpha}; seed "
        f"{args.seed}; {args.trials} PRs (A/A) and {args.trials} tests per effect; 95 % Clopper-Pearson",
        "", "| c | processes per side | tol | PRs with a false alarm | +5 % p50 detected "
        "| +10 % p50 detected | s/verdict (+10 %) | goals (c1) |", "|---|---|---|---|---|---|---|---|",
    ])
    for concurrency in args.concurrency:
        for m in args.replicas:
            mode = Mode("ab", concurrency=concurrency, replicas=m)
            for tol in args.tolerances:
                aa = simulate_prs(model, mode, tolerance=tol, effect=0.0, prs=args.trials, tests=args.tests,
                                  alpha=args.alpha, settings=settings, seed=args.seed)
                found = [simulate_tests(model, mode, tolerance=tol, effect=effect, trials=args.trials,
                                        tests=args.tests, alpha=args.alpha, settings=settings, seed=args.seed)
                         for effect in (0.05, 0.10)]
                seconds = found[1].seconds / found[1].tests
                goal = "-"
                if concurrency == 1:
                    ok = (found[0].failed_tests >= 0.8 * found[0].tests
                          and found[1].failed_tests >= 0.95 * found[1].tests and seconds <= 60)
                    goal = "detection met" if ok else "not met"
                print(f"| {concurrency} | {m} | {tol:.0%} | {rate_text(aa.failed_prs, aa.prs)} | "
                      f"{rate_text(found[0].failed_tests, found[0].tests)} | "
                      f"{rate_text(found[1].failed_tests, found[1].tests)} | {seconds:.1f} | {goal} |",
                      flush=True)
    print(f"\n({time.monotonic() - t0:.0f} s)")


def fit(args: argparse.Namespace) -> None:
    fitted = fit_files([Path(p) for p in args.files])
    defaults = default_model()
    _print(fitted.lines)
    models = {"defaults (docs/GATE.md)": defaults, "fitted": fitted.model}
    if args.pessimistic:
        models["pessimistic"] = pessimistic(defaults, fitted.model)
    _print(["", *model_table(models), "", "where each fitted figure comes from:"])
    _print(f"- {k}: {v}" for k, v in fitted.model.sources.items() if v.startswith(("fit", "the files")))
    _print(["", "defaults:"])
    _print(f"- {k}: {v}" for k, v in defaults.sources.items())
    if args.out:
        chosen = models["pessimistic"] if args.pessimistic else fitted.model
        Path(args.out).write_text(json.dumps(chosen.to_dict(), indent=1) + "\n")
        print(f"\nwrote {args.out} ({'pessimistic' if args.pessimistic else 'fitted'} model)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the noise model to gate_quality.py collect / collect-ab files")
    f.add_argument("files", nargs="+")
    f.add_argument("--out", help="write the fitted model (JSON) for simulate --params")
    f.add_argument("--pessimistic", action="store_true",
                   help="also print (and --out writes) the noisier of defaults and fit, parameter by "
                   "parameter")
    s = sub.add_parser("simulate", help="run the real judges on synthetic windows")
    s.add_argument("--params", help="a model written by fit --out (default: docs/GATE.md's figures)")
    s.add_argument("--trials", type=int, default=200,
                   help="PRs per A/A row and tests per effect (default 200)")
    s.add_argument("--tests", type=int, default=10, help="perf tests in the PR (default 10)")
    s.add_argument("--gate", nargs="+", default=list(GATE), help="gated metrics (default p50_ms rps)")
    s.add_argument("--alpha", type=float, default=0.01, help="--perf-alpha (default 0.01)")
    s.add_argument("--tolerances", type=float, nargs="+", default=[0.10, 0.05])
    s.add_argument("--histories", type=int, nargs="*", default=[1, 3, 5],
                   help="stored runs (default 1 3 5; none: no stored rows)")
    s.add_argument("--concurrency", type=int, nargs="*", default=[1, 4],
                   help="--ab-baseline concurrency: 1 alternates requests, more interleaves windows")
    s.add_argument("--each-sitting", action="store_true",
                   help="stored runs recorded in separate sittings (CI on main) rather than one")
    s.add_argument("--warmup", type=float, default=2.0, help="--perf-warmup (default 2)")
    s.add_argument("--min-windows", type=int, default=6, help="--perf-min-windows (default 6)")
    s.add_argument("--max-windows", type=int, default=20, help="--perf-max-windows (default 20)")
    s.add_argument("--run-drift", type=float, default=DEFAULT_RUN_DRIFT, help="--perf-run-drift")
    s.add_argument("--compare-pairs", type=int, nargs="*", default=[5, 10, 20])
    s.add_argument("--compare-alpha", type=float, default=0.01, help="perf.compare's stated alpha (0.01)")
    s.add_argument("--compare-trials", type=int, default=0, help="default 4 x --trials")
    s.add_argument("--goal-tolerances", type=float, nargs="*", default=[0.0, 0.02, 0.03])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scipy-stats", action="store_true",
                   help="keep scipy.stats in the judges' tail functions (same values, about 3x slower)")
    s.add_argument("--replicas", type=int, nargs="*", default=[1],
                   help="--ab-replicas: processes per side for the --ab-baseline rows (default 1)")
    r = sub.add_parser("replicas", help="--ab-baseline with m processes per side (--ab-replicas): "
                       "per-PR false alarms, +5 %% and +10 %% p50 detection, seconds per verdict")
    r.add_argument("--params", help="a model written by fit --out (default: docs/GATE.md's figures)")
    r.add_argument("--trials", type=int, default=200, help="PRs per A/A cell and tests per effect (200)")
    r.add_argument("--tests", type=int, default=10, help="perf tests in the PR (default 10)")
    r.add_argument("--gate", nargs="+", default=list(GATE), help="gated metrics (default p50_ms rps)")
    r.add_argument("--alpha", type=float, default=0.01, help="--perf-alpha (default 0.01)")
    r.add_argument("--tolerances", type=float, nargs="+", default=[0.0, 0.10])
    r.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    r.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3, 4])
    r.add_argument("--warmup", type=float, default=2.0, help="--perf-warmup (default 2)")
    r.add_argument("--min-windows", type=int, default=6, help="--perf-min-windows (default 6)")
    r.add_argument("--max-windows", type=int, default=20, help="--perf-max-windows (default 20)")
    r.add_argument("--run-drift", type=float, default=DEFAULT_RUN_DRIFT, help="--perf-run-drift")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--scipy-stats", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "fit":
        fit(args)
    elif args.cmd == "replicas":
        with fast_tails(not args.scipy_stats):
            replicas_scan(args)
    else:
        if args.trials < 1 or args.tests < 1:
            parser.error("--trials and --tests must be >= 1")
        with fast_tails(not args.scipy_stats):
            simulate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
