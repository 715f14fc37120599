"""Verdicts from window values: is the current run worse than the baseline beyond noise and tolerance?

A regression needs two things at once: the median of the window values moved the wrong way by
more than the tolerance (the change matters), and the windows show it is not noise (a one-sided
Mann-Whitney U test below ``alpha`` and a seeded bootstrap confidence interval of the ratio of
medians that excludes "no change"). A large change without that evidence is ``inconclusive``: the
caller may measure more windows. Pure functions; the rule is explained in docs/GATE.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pytest_tfserving.gate.ceilings import DEFAULT_GATE, DEFAULT_TOLERANCE
from pytest_tfserving.gate.fingerprint import hardware_key
from pytest_tfserving.gate.paired import min_pairs_signed_rank, signed_rank, student_t
from pytest_tfserving.load.results import HIGHER_IS_BETTER, LOWER_IS_BETTER, Measurement

if TYPE_CHECKING:
    from pytest_tfserving.gate.baselines import Baseline

Verdict = Literal["pass", "regression", "improvement", "inconclusive", "incomparable"]
RelativeOutcome = Literal["pass", "fail", "inconclusive"]

DEFAULT_ALPHA = 0.01
DEFAULT_MIN_WINDOWS = 5
DEFAULT_BOOTSTRAP = 2000
DEFAULT_SEED = 0
DEFAULT_MIN_RUNS = 3  # baseline runs needed before the judge tests against run-to-run spread
# The run-to-run spread the judge assumes at least (sd of log run medians). A history recorded in one
# sitting sees only that sitting's drift: here fp32 ResNet50's runs had sd 0.03 on one day and read
# 13-25 % slower a week later (worst log 0.222), which failed an unchanged `make perf`. 0.06 is the
# smallest whole percent under which none of those runs is significant against 3 to 5 recorded runs
# (docs/GATE.md).
DEFAULT_RUN_DRIFT = 0.06
PairedMethod = Literal["signed_rank", "student_t"]
DEFAULT_PAIRED_METHOD: PairedMethod = "signed_rank"  # chosen by benchmarks/gate_quality.py analyze-ab


def _lower_is_better(metric: str) -> bool:
    if metric in LOWER_IS_BETTER:
        return True
    if metric in HIGHER_IS_BETTER:
        return False
    known = ", ".join(sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER))
    raise ValueError(f"unknown metric {metric!r}: the judge knows {known}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{'+' if value > 0 else ''}{value * 100:.1f}%" if math.isfinite(value) else ("+inf" if value > 0
                                                                                        else "-inf")


@dataclass(frozen=True)
class MetricVerdict:
    """One metric's verdict. ``baseline``/``current`` are medians of window values; ``change`` and the
    CI are relative (``+0.12`` = 12% higher than the baseline)."""

    metric: str
    verdict: Verdict
    baseline: float | None
    current: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # one-sided, in the direction of the observed change
    tolerance: float
    confidence: float  # of the central CI, 1 - 2 * alpha
    n_baseline: int
    n_current: int
    hardware_baseline: str
    hardware_current: str
    reason: str
    more_windows_help: bool = False
    baseline_runs: int = 0  # > 0: judged against this many recorded runs (run-to-run spread)
    paired: bool = False  # judged against the baseline's deployment served beside it (A/B windows)

    @property
    def failed(self) -> bool:
        return self.verdict == "regression"

    def message(self) -> str:
        head = f"{self.metric}: {self.verdict}"
        if self.paired:
            base = f"baseline's deployment served beside it, median of {self.n_baseline} paired windows"
        elif self.baseline_runs:
            base = f"geometric mean of {self.baseline_runs} recorded runs"
        else:
            base = f"median of {self.n_baseline} windows"
        values = (f"baseline {_fmt(self.baseline)} ({base}) -> current "
                  f"{_fmt(self.current)} (median of {self.n_current} windows)")
        stats = f"change {_pct(self.change)} (tolerance {self.tolerance:.0%})"
        if self.ci_low is not None and self.ci_high is not None:
            interval = ("prediction interval" if self.baseline_runs
                        else "CI of the paired ratio" if self.paired else "CI")
            stats += f", {self.confidence:.0%} {interval} {_pct(self.ci_low)}..{_pct(self.ci_high)}"
        if self.p_value is not None:
            stats += f", p={self.p_value:.2g}"
        if self.hardware_baseline == self.hardware_current:
            hardware = f"both measured on {self.hardware_current}"
        else:
            hardware = f"baseline measured on {self.hardware_baseline}, current on {self.hardware_current}"
        return f"{head} - {self.reason}; {values}; {stats}; {hardware}"


@dataclass(frozen=True)
class RelativeVerdict:
    """An in-run comparison of ``a`` against ``b`` (e.g. int8 vs fp32) on paired, interleaved windows."""

    metric: str
    verdict: RelativeOutcome
    ratio: float | None  # geometric mean of paired window ratios a/b
    ci_low: float | None
    ci_high: float | None
    max_ratio: float | None
    min_ratio: float | None
    n_pairs: int
    confidence: float  # each bound is one-sided at this level
    label_a: str
    label_b: str
    reason: str
    more_windows_help: bool = False

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    def message(self) -> str:
        bound = " and ".join(
            part for part in (
                None if self.max_ratio is None else f"<= {self.max_ratio:g}x",
                None if self.min_ratio is None else f">= {self.min_ratio:g}x",
            ) if part
        )
        ratio = "-" if self.ratio is None else f"{self.ratio:.3f}x"
        ci = ("" if self.ci_low is None or self.ci_high is None
              else f", {self.confidence:.0%} one-sided bounds {self.ci_low:.3f}x..{self.ci_high:.3f}x")
        return (f"{self.metric} {self.label_a}/{self.label_b}: {self.verdict} - {self.reason}; "
                f"required {bound}; measured {ratio} over {self.n_pairs} window pairs{ci}")


def needs_more_windows(verdict: MetricVerdict | RelativeVerdict) -> bool:
    """True when measuring more windows could settle an inconclusive verdict (not when data is missing)."""
    return verdict.verdict == "inconclusive" and verdict.more_windows_help


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def _relative_change(base: float, cur: float) -> float:
    if base == 0:
        return 0.0 if cur == 0 else math.copysign(math.inf, cur)
    return (cur - base) / abs(base)


def _bootstrap_ratio_ci(
    base: np.ndarray, cur: np.ndarray, alpha: float, n_bootstrap: int, seed: int
) -> tuple[float | None, float | None]:
    """Percentile bootstrap of median(cur)/median(base) - 1, resampling each side independently."""
    rng = np.random.default_rng(seed)
    b = np.median(base[rng.integers(0, base.size, (n_bootstrap, base.size))], axis=1)
    c = np.median(cur[rng.integers(0, cur.size, (n_bootstrap, cur.size))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = c / b
    ratios = ratios[~np.isnan(ratios)]
    if ratios.size == 0:
        return None, None
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return float(low) - 1.0, float(high) - 1.0


def _mann_whitney_p(base: np.ndarray, cur: np.ndarray, alternative: str) -> float:
    from scipy.stats import mannwhitneyu

    if np.all(base == base[0]) and np.all(cur == base[0]):
        return 1.0  # identical constants: no evidence of any difference
    return float(mannwhitneyu(cur, base, alternative=alternative).pvalue)


def _between_runs(
    runs: np.ndarray, cur: np.ndarray, alpha: float, run_drift: float = DEFAULT_RUN_DRIFT
) -> tuple[float, float, float, float, float]:
    """Is the current run outside what the recorded runs predict for one more run?

    On log values: the runs' mean and spread give a Student-t prediction for a new run's median
    (n - 1 degrees of freedom, scale ``s * sqrt(1 + 1/n)``). The spread is floored at the current
    run's own standard error, so near-identical recorded runs cannot make a noisy run look
    significant, and at ``run_drift``, the drift between sessions that a history recorded in one
    sitting has not seen. Returns (baseline centre, change, prediction low, high, one-sided p).
    """
    from scipy.stats import t as student_t

    logs = np.log(runs)
    n = logs.size
    centre = float(logs.mean())
    cur_logs = np.log(cur[cur > 0])
    standard_error = float(cur_logs.std(ddof=1) / math.sqrt(cur_logs.size)) if cur_logs.size > 1 else 0.0
    spread = max(float(logs.std(ddof=1)), standard_error, math.log1p(run_drift), 1e-9)
    scale = spread * math.sqrt(1 + 1 / n)
    diff = float(math.log(float(np.median(cur)))) - centre
    quantile = float(student_t.ppf(1 - alpha, n - 1))
    p_value = float(student_t.sf(abs(diff) / scale, n - 1))
    return (math.exp(centre), math.exp(diff) - 1, math.exp(diff - quantile * scale) - 1,
            math.exp(diff + quantile * scale) - 1, p_value)


def _judge_against_runs(
    judged: MetricVerdict, runs: np.ndarray, cur: np.ndarray, metric: str, alpha: float, run_drift: float
) -> MetricVerdict:
    centre, change, low, high, p_value = _between_runs(runs, cur, alpha, run_drift)
    judged = replace(judged, baseline=centre, change=change, ci_low=low, ci_high=high, p_value=p_value,
                     baseline_runs=int(runs.size))
    spread = f"the run-to-run spread of {runs.size} recorded runs"
    if run_drift > 0:
        spread += f" (taken as at least {run_drift:.0%}, --perf-run-drift)"
    if abs(change) <= judged.tolerance:
        return replace(judged, verdict="pass", reason="within tolerance")
    worse = (change > 0) == _lower_is_better(metric)
    evidence = p_value < alpha
    if worse and evidence:
        return replace(judged, verdict="regression", reason=f"worse beyond tolerance and beyond {spread}")
    if worse:
        return replace(judged, verdict="inconclusive",
                       reason=f"worse beyond tolerance but within {spread}; more windows do not narrow it")
    if evidence:
        return replace(judged, verdict="improvement", reason=f"better beyond tolerance and beyond {spread}")
    return replace(judged, verdict="pass", reason=f"better, but within {spread}")


def _check_alpha_and_tolerance(alpha: float, tolerance: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha={alpha!r} must be in (0, 0.5), e.g. 0.01")
    if tolerance < 0:
        raise ValueError(f"tolerance={tolerance!r} must be >= 0, e.g. 0.10 for 10%")


def judge_metric(
    metric: str,
    baseline_values: Sequence[float],
    current_values: Sequence[float],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    alpha: float = DEFAULT_ALPHA,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    hardware_baseline: str = "unknown hardware",
    hardware_current: str = "unknown hardware",
    baseline_runs: Sequence[float] = (),
    min_runs: int = DEFAULT_MIN_RUNS,
    run_drift: float = DEFAULT_RUN_DRIFT,
) -> MetricVerdict:
    """Judge one metric from per-window values of the baseline and the current run.

    ``baseline_runs``: one value per recorded baseline run (each the median of that run's windows,
    each from its own session). With at least ``min_runs`` positive values the evidence is the
    between-run test (is this run outside the spread of the recorded runs?); otherwise it is the
    window-level test, which sees noise within a run only. ``run_drift``: the spread between runs
    assumed at least (relative), for drift between sessions that the recorded runs have not seen.
    """
    _lower_is_better(metric)
    _check_alpha_and_tolerance(alpha, tolerance)
    base, cur = _finite(baseline_values), _finite(current_values)
    empty = MetricVerdict(
        metric=metric, verdict="inconclusive", baseline=None, current=None, change=None, ci_low=None,
        ci_high=None, p_value=None, tolerance=tolerance, confidence=1 - 2 * alpha,
        n_baseline=int(base.size), n_current=int(cur.size), hardware_baseline=hardware_baseline,
        hardware_current=hardware_current, reason="",
    )
    if hardware_baseline != hardware_current:
        return replace(empty, verdict="incomparable",
                       reason="hardware differs; record a baseline on this hardware")
    if base.size == 0 or cur.size == 0:
        side = "baseline" if base.size == 0 else "current run"
        return replace(empty, reason=f"{metric} was not measured in the {side}")
    med_b, med_c = float(np.median(base)), float(np.median(cur))
    change = _relative_change(med_b, med_c)
    measured = replace(empty, baseline=med_b, current=med_c, change=change)
    if base.size < min_windows or cur.size < min_windows:
        short = "baseline" if base.size < min_windows else "current run"
        fix = "record the baseline again with more windows" if short == "baseline" else "measure more windows"
        return replace(measured, reason=f"the {short} has fewer than {min_windows} windows; {fix}",
                       more_windows_help=short == "current run")
    runs = _finite(baseline_runs)
    if runs.size >= max(min_runs, 2) and np.all(runs > 0) and med_c > 0:
        return _judge_against_runs(measured, runs, cur, metric, alpha, run_drift)
    ci_low, ci_high = _bootstrap_ratio_ci(base, cur, alpha, n_bootstrap, seed)
    went_up = change > 0
    p_value = _mann_whitney_p(base, cur, "greater" if went_up else "less")
    judged = replace(measured, ci_low=ci_low, ci_high=ci_high, p_value=p_value)
    if abs(change) <= tolerance:
        return replace(judged, verdict="pass", reason="within tolerance")
    # Evidence: the rank test and the CI both say the change is real, on the side it was observed.
    ci_excludes_zero = (ci_low or 0.0) > 0 if went_up else (ci_high or 0.0) < 0
    evidence = p_value < alpha and ci_excludes_zero
    worse = went_up == _lower_is_better(metric)
    one_run = (f"the baseline has {runs.size or 1} recorded run{'s' if runs.size > 1 else ''}, so "
               f"run-to-run drift is not in this test (record {min_runs} with --update-baselines)")
    return _decide(judged, worse, evidence, regression=f"worse beyond tolerance; {one_run}",
                   noisy="worse beyond tolerance but the windows are too noisy to tell")


def _decide(
    judged: MetricVerdict, worse: bool, evidence: bool, *, regression: str, noisy: str
) -> MetricVerdict:
    """The four outcomes of a change beyond tolerance; worse without evidence asks for more windows."""
    if worse and evidence:
        return replace(judged, verdict="regression", reason=regression)
    if worse:
        return replace(judged, verdict="inconclusive", more_windows_help=True, reason=noisy)
    if evidence:
        return replace(judged, verdict="improvement", reason="better beyond tolerance")
    return replace(judged, verdict="pass", reason="better, but not significantly")


def judge(
    baseline: Baseline,
    current: Measurement,
    current_fingerprint: Mapping[str, Any] | None = None,
    *,
    gate: Sequence[str] = DEFAULT_GATE,
    tolerance: float = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    min_runs: int = DEFAULT_MIN_RUNS,
    run_drift: float = DEFAULT_RUN_DRIFT,
) -> list[MetricVerdict]:
    """One verdict per gated metric; a different ``hardware_key`` gives ``incomparable`` for all."""
    hw_base = hardware_key(baseline.fingerprint) if baseline.fingerprint else "unknown hardware"
    hw_cur = hardware_key(current_fingerprint) if current_fingerprint else hw_base
    if not baseline.fingerprint:
        hw_base = hw_cur
    tolerances = tolerances or {}
    return [
        judge_metric(
            metric,
            baseline.measurement.window_values(metric),
            current.window_values(metric),
            tolerance=tolerances.get(metric, tolerance),
            alpha=alpha,
            min_windows=min_windows,
            n_bootstrap=n_bootstrap,
            seed=seed,
            hardware_baseline=hw_base,
            hardware_current=hw_cur,
            baseline_runs=baseline.run_values(metric),
            min_runs=min_runs,
            run_drift=run_drift,
        )
        for metric in gate
    ]


def judge_paired(
    metric: str,
    reference_values: Sequence[float],
    current_values: Sequence[float],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    alpha: float = DEFAULT_ALPHA,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    hardware: str = "unknown hardware",
    method: PairedMethod = DEFAULT_PAIRED_METHOD,
) -> MetricVerdict:
    """Judge the current deployment against the baseline's own deployment, measured in interleaved
    windows (window i of each side ran back to back), so machine drift cancels in each pair.

    On the log ratios ``d_i = log(current_i / reference_i)`` (``paired``): ``signed_rank`` (default)
    estimates the change by Hodges-Lehmann with exact Wilcoxon bounds, robust to a window hit by a
    neighbour; ``student_t`` by the mean with t bounds. A regression needs the change beyond
    ``tolerance`` and the one-sided ``1 - alpha`` bound excluding "no change".
    """
    lower_better = _lower_is_better(metric)
    _check_alpha_and_tolerance(alpha, tolerance)
    if method not in ("signed_rank", "student_t"):
        raise ValueError(f"method={method!r}: use 'signed_rank' or 'student_t'")
    pairs = [
        (float(r), float(c)) for r, c in zip(reference_values, current_values, strict=False)
        if r > 0 and c > 0 and math.isfinite(r) and math.isfinite(c)
    ]
    judged = MetricVerdict(
        metric=metric, verdict="inconclusive", baseline=None, current=None, change=None, ci_low=None,
        ci_high=None, p_value=None, tolerance=tolerance, confidence=1 - 2 * alpha, n_baseline=len(pairs),
        n_current=len(pairs), hardware_baseline=hardware, hardware_current=hardware, reason="",
        paired=True,
    )
    need = max(min_windows, 2, min_pairs_signed_rank(alpha) if method == "signed_rank" else 2)
    if len(pairs) < need:
        return replace(judged, more_windows_help=True,
                       reason=f"{len(pairs)} positive window pairs, need {need} to reach alpha={alpha:g}")
    values = np.asarray(pairs)
    logs = np.log(values[:, 1]) - np.log(values[:, 0])
    location = signed_rank(logs, alpha) if method == "signed_rank" else student_t(logs, alpha)
    change = math.exp(location.estimate) - 1
    judged = replace(
        judged,
        baseline=float(np.median(values[:, 0])),
        current=float(np.median(values[:, 1])),
        change=change,
        ci_low=None if location.low is None else math.exp(location.low) - 1,
        ci_high=None if location.high is None else math.exp(location.high) - 1,
        p_value=location.p_value,
    )
    if abs(change) <= tolerance:
        return replace(judged, verdict="pass", reason="within tolerance")
    worse = (change > 0) == lower_better
    bound = location.low if change > 0 else location.high
    evidence = bound is not None and (bound > 0 if change > 0 else bound < 0)
    return _decide(judged, worse, evidence, regression="worse beyond tolerance",
                   noisy="worse beyond tolerance but the window pairs are too noisy to tell")


def judge_against_reference(
    reference: Measurement,
    current: Measurement,
    *,
    gate: Sequence[str] = DEFAULT_GATE,
    tolerance: float = DEFAULT_TOLERANCE,
    tolerances: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    hardware: str = "unknown hardware",
    method: PairedMethod = DEFAULT_PAIRED_METHOD,
) -> list[MetricVerdict]:
    """One paired verdict per gated metric: ``current`` and ``reference`` from ``measure_interleaved``."""
    tolerances = tolerances or {}
    return [
        judge_paired(
            metric,
            reference.window_values(metric),
            current.window_values(metric),
            tolerance=tolerances.get(metric, tolerance),
            alpha=alpha,
            min_windows=min_windows,
            hardware=hardware,
            method=method,
        )
        for metric in gate
    ]


def judge_relative(
    a: Measurement,
    b: Measurement,
    metric: str,
    max_ratio: float | None = None,
    min_ratio: float | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    label_a: str = "a",
    label_b: str = "b",
) -> RelativeVerdict:
    """Compare ``a`` with ``b`` window by window (windows measured interleaved: A B A B ...).

    Ratio = geometric mean of a_i/b_i over pairs; its bootstrap bounds (resampling pairs) are one-sided
    at ``1 - alpha``. ``max_ratio``: pass when the upper bound <= max_ratio, fail when the lower bound
    > max_ratio. ``min_ratio``: pass when the lower bound >= min_ratio, fail when the upper bound
    < min_ratio. Otherwise inconclusive (more pairs may settle it).
    """
    _lower_is_better(metric)
    if max_ratio is None and min_ratio is None:
        raise ValueError("judge_relative needs max_ratio (e.g. 0.6 for 'a <= 0.6x b') and/or min_ratio")
    for name, bound in (("max_ratio", max_ratio), ("min_ratio", min_ratio)):
        if bound is not None and not (math.isfinite(bound) and bound > 0):
            raise ValueError(f"{name}={bound!r} must be a positive number")
    pairs = [
        (va, vb) for wa, wb in zip(a.windows, b.windows, strict=False)
        if (va := wa.metric(metric)) is not None and (vb := wb.metric(metric)) is not None
        and va > 0 and vb > 0 and math.isfinite(va) and math.isfinite(vb)
    ]
    empty = RelativeVerdict(
        metric=metric, verdict="inconclusive", ratio=None, ci_low=None, ci_high=None, max_ratio=max_ratio,
        min_ratio=min_ratio, n_pairs=len(pairs), confidence=1 - alpha, label_a=label_a, label_b=label_b,
        reason=f"{len(pairs)} positive window pairs, need {min_windows}", more_windows_help=True,
    )
    if len(pairs) < min_windows:
        return empty
    logs = np.log(np.asarray(pairs)[:, 0]) - np.log(np.asarray(pairs)[:, 1])
    rng = np.random.default_rng(seed)
    boot = logs[rng.integers(0, logs.size, (n_bootstrap, logs.size))].mean(axis=1)
    low, high = (float(math.exp(q)) for q in np.quantile(boot, [alpha, 1 - alpha]))
    ratio = float(math.exp(logs.mean()))
    fails = (max_ratio is not None and low > max_ratio) or (min_ratio is not None and high < min_ratio)
    passes = (max_ratio is None or high <= max_ratio) and (min_ratio is None or low >= min_ratio)
    if fails:
        outcome: RelativeOutcome = "fail"
        reason = "the ratio is beyond the bound with confidence"
    elif passes:
        outcome, reason = "pass", "the ratio is within the bound with confidence"
    else:
        outcome, reason = "inconclusive", "the confidence interval straddles the bound"
    return replace(empty, verdict=outcome, ratio=ratio, ci_low=low, ci_high=high, reason=reason,
                   more_windows_help=outcome == "inconclusive")
