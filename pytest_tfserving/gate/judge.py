"""Verdicts from window values: is the current run worse than the baseline beyond noise and tolerance?

A regression needs two things at once: the median of the window values moved the wrong way by
more than the tolerance (the change matters), and the windows show it is not noise (a one-sided
Mann-Whitney U test below ``alpha`` and a seeded bootstrap confidence interval of the ratio of
medians that excludes "no change"). A large change without that evidence is ``inconclusive``: the
caller may measure more windows. Pure functions; the rule is explained in docs/GATE.md.

The verdict dataclasses live in ``verdicts.py``, the paired and in-run judges in ``relative.py``;
both are re-exported here, where callers have always imported them from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_tfserving.gate.ceilings import DEFAULT_GATE, DEFAULT_TOLERANCE
from pytest_tfserving.gate.fingerprint import hardware_key
from pytest_tfserving.gate.relative import judge_against_reference, judge_paired, judge_relative
from pytest_tfserving.gate.verdicts import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MIN_RUNS,
    DEFAULT_MIN_WINDOWS,
    DEFAULT_PAIRED_METHOD,
    DEFAULT_RUN_DRIFT,
    DEFAULT_SEED,
    MetricVerdict,
    PairedMethod,
    RelativeOutcome,
    RelativeVerdict,
    Verdict,
    check_alpha_and_tolerance,
    decide,
    lower_is_better,
    needs_more_windows,
    unjudged,
)
from pytest_tfserving.load.results import Measurement

if TYPE_CHECKING:
    from pytest_tfserving.gate.baselines import Baseline

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_MIN_RUNS",
    "DEFAULT_MIN_WINDOWS",
    "DEFAULT_PAIRED_METHOD",
    "DEFAULT_RUN_DRIFT",
    "DEFAULT_SEED",
    "MetricVerdict",
    "PairedMethod",
    "RelativeOutcome",
    "RelativeVerdict",
    "Verdict",
    "judge",
    "judge_against_reference",
    "judge_metric",
    "judge_paired",
    "judge_relative",
    "needs_more_windows",
]


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
    worse = (change > 0) == lower_is_better(metric)
    evidence = p_value < alpha
    if worse and evidence:
        return replace(judged, verdict="regression", reason=f"worse beyond tolerance and beyond {spread}")
    if worse:
        return replace(judged, verdict="inconclusive",
                       reason=f"worse beyond tolerance but within {spread}; more windows do not narrow it")
    if evidence:
        return replace(judged, verdict="improvement", reason=f"better beyond tolerance and beyond {spread}")
    return replace(judged, verdict="pass", reason=f"better, but within {spread}")



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
    lower_is_better(metric)
    check_alpha_and_tolerance(alpha, tolerance)
    base, cur = _finite(baseline_values), _finite(current_values)
    empty = unjudged(
        metric, tolerance=tolerance, alpha=alpha, n_baseline=int(base.size), n_current=int(cur.size),
        hardware_baseline=hardware_baseline, hardware_current=hardware_current,
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
    worse = went_up == lower_is_better(metric)
    one_run = (f"the baseline has {runs.size or 1} recorded run{'s' if runs.size > 1 else ''}, so "
               f"run-to-run drift is not in this test (record {min_runs} with --update-baselines)")
    return decide(judged, worse, evidence, regression=f"worse beyond tolerance; {one_run}",
                   noisy="worse beyond tolerance but the windows are too noisy to tell")



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
