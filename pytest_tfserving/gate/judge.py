"""Verdicts against a stored baseline: is the current run worse than the baseline's runs predict,
by more than the tolerance, with confidence?

The evidence is the current run's median against the baseline's recorded runs, with the drift
between sessions in the error (``stored_evidence``); the verdict is ``evidence.settle``'s: a
regression needs the one-sided ``1 - alpha`` bound beyond the tolerance, so a true change within
the tolerance is called a regression at most ``alpha`` of the time. Pure functions; the rule and
its calibration are in docs/GATE.md.

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
from pytest_tfserving.gate.evidence import Evidence, settle, welch_df
from pytest_tfserving.gate.fingerprint import hardware_key, speed_mismatch_reason
from pytest_tfserving.gate.relative import judge_against_reference, judge_paired, judge_relative
from pytest_tfserving.gate.run_drift import PooledDrift, baseline_hardware, drifts_more_than_pool
from pytest_tfserving.gate.verdicts import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_RUNS,
    DEFAULT_MIN_WINDOWS,
    DEFAULT_PAIRED_METHOD,
    DEFAULT_RUN_DRIFT,
    DEFAULT_SPEED_MISMATCH,
    MetricVerdict,
    PairedMethod,
    RelativeOutcome,
    RelativeVerdict,
    Verdict,
    check_alpha_and_tolerance,
    history_decides,
    lower_is_better,
    needs_more_windows,
    unjudged,
)
from pytest_tfserving.load.results import Measurement

if TYPE_CHECKING:
    from pytest_tfserving.gate.baselines import Baseline

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_RUNS",
    "DEFAULT_MIN_WINDOWS",
    "DEFAULT_PAIRED_METHOD",
    "DEFAULT_RUN_DRIFT",
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


MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)  # se of a normal sample's median over the mean's


def _standard_error(logs: np.ndarray) -> float:
    """Standard error of the median of ``logs`` (the runs are summarised by medians)."""
    return MEDIAN_EFFICIENCY * float(logs.std(ddof=1) / math.sqrt(logs.size)) if logs.size > 1 else 0.0


def _drift_estimate(
    logs: np.ndarray, pooled: PooledDrift | None, floor: float
) -> tuple[float, float, str]:
    """The drift between sessions as estimated from the recorded runs (``logs``, at least two): the
    pool of this runner's histories, unless this test's own runs drift significantly more than the
    pool and more than the floor (below the floor, the floor stands for both), then its own spread.
    Returns (sd, degrees of freedom, what it is)."""
    own_sd, own_df = float(logs.std(ddof=1)), int(logs.size) - 1
    own = (own_sd, float(own_df), f"the spread of {logs.size} recorded runs")
    if pooled is None or pooled.df <= own_df:
        return own
    if own_sd > floor and drifts_more_than_pool(own_sd, own_df, pooled):
        return own
    return pooled.sd, float(pooled.df), pooled.describe()


def stored_evidence(
    base: np.ndarray,
    cur: np.ndarray,
    runs: np.ndarray,
    *,
    min_runs: int,
    run_drift: float,
    pooled: PooledDrift | None = None,
) -> tuple[Evidence, float, int, str, bool]:
    """How far the current run's median lies from what the baseline's runs predict for one more run.

    On log values. The baseline's centre is the mean of its recorded run medians (``runs``, one per
    session), or with a single run its window median. A new run differs from it by the drift between
    sessions, ``s``. With at least ``min_runs`` runs recorded, ``s`` is estimated: from this runner's
    pooled histories (``pooled``, see ``gate.run_drift``) or the runs' own spread, and never below
    the floor ``log(1 + run_drift)``; either way Student-t on the estimate's degrees of freedom, since
    runs that agree by chance do not show the drift is small. With fewer runs ``s`` is the floor,
    taken as known (normal): such a baseline makes no claim (``judge_metric``). The standard error is
    ``sqrt(s^2 (1 + 1/n) + se_current^2 [+ se_baseline^2 for one run])``. Returns (evidence, baseline
    centre, runs used, what the noise is, whether more current windows would narrow it).
    """
    cur_logs = np.log(cur)
    n_runs = int(runs.size) if history_decides(int(runs.size), min_runs) else 1
    floor = math.log1p(run_drift)
    se_current = _standard_error(cur_logs)
    floor_text = (f"a run-to-run drift of {run_drift:.0%} (--perf-run-drift)" if run_drift > 0
                  else "the windows' own noise (--perf-run-drift 0)")
    if n_runs > 1:
        logs = np.log(runs)
        centre = float(logs.mean())
        se_baseline = 0.0
        estimated, df, source = _drift_estimate(logs, pooled, floor)
        if estimated > floor:
            between, noise = estimated, source
        else:
            between = floor
            noise = f"{floor_text}, on the {df:.0f} degrees of freedom of {source}"
    else:
        centre = float(math.log(float(np.median(base))))
        se_baseline = _standard_error(np.log(base))
        between, df, noise = floor, math.inf, floor_text
        if run_drift == 0:
            df = welch_df(0.0, math.hypot(se_current, se_baseline), int(min(cur.size, max(base.size, 2))))
    drift_part = between * between * (1 + 1 / n_runs)
    scale = math.sqrt(drift_part + se_current**2 + se_baseline**2)
    estimate = float(math.log(float(np.median(cur)))) - centre
    more_windows_help = se_current**2 >= drift_part
    runs_used = n_runs if n_runs > 1 else 0
    return Evidence(estimate, scale, df), math.exp(centre), runs_used, noise, more_windows_help


def judge_metric(
    metric: str,
    baseline_values: Sequence[float],
    current_values: Sequence[float],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    alpha: float = DEFAULT_ALPHA,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    hardware_baseline: str = "unknown hardware",
    hardware_current: str = "unknown hardware",
    baseline_runs: Sequence[float] = (),
    min_runs: int = DEFAULT_MIN_RUNS,
    run_drift: float = DEFAULT_RUN_DRIFT,
    pooled: PooledDrift | None = None,
) -> MetricVerdict:
    """Judge one metric from per-window values of the baseline and the current run.

    ``baseline_runs``: one value per recorded baseline run (each the median of that run's windows,
    each from its own session). ``run_drift``: the drift between sessions assumed at least (relative
    standard deviation). ``pooled``: this runner's drift pooled over its baselines' histories
    (``gate.run_drift``). ``alpha``: the level of this one verdict at this one look (the caller
    spends --perf-alpha over tests, metrics and looks: ``gate.alpha_budget``). The rule is
    ``stored_evidence`` then ``evidence.settle``.
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
                       reason="hardware or server build differs; record a baseline on this runner")
    if base.size == 0 or cur.size == 0:
        side = "baseline" if base.size == 0 else "current run"
        return replace(empty, reason=f"{metric} was not measured in the {side}")
    med_b, med_c = float(np.median(base)), float(np.median(cur))
    change = med_c / med_b - 1 if med_b > 0 else (0.0 if med_c == 0 else math.inf)
    measured = replace(empty, baseline=med_b, current=med_c, change=change)
    if min(float(base.min()), float(cur.min())) <= 0:
        if med_b == med_c == 0:
            return replace(measured, verdict="pass", reason="zero in both runs")
        return replace(measured, reason=f"{metric} has zero windows, which have no relative change; "
                                        f"gate it with a ceiling instead (e.g. max_error_rate)")
    if cur.size < min_windows:
        return replace(measured, more_windows_help=True,
                       reason=f"the current run has fewer than {min_windows} windows; measure more windows")
    runs = _finite(baseline_runs)
    runs = runs[runs > 0]
    if not history_decides(int(runs.size), min_runs) and base.size < min_windows:
        return replace(measured, reason=f"the baseline has fewer than {min_windows} windows; "
                                        "record the baseline again with more windows")
    evidence, centre, n_runs, noise, more = stored_evidence(
        base, cur, runs, min_runs=min_runs, run_drift=run_drift, pooled=pooled
    )
    judged = replace(measured, baseline=centre, change=math.expm1(evidence.estimate), baseline_runs=n_runs)
    settled = settle(judged, evidence, alpha, noise=noise, more_windows_help=more)
    recorded = max(int(runs.size), 1)  # a baseline without a history is one run
    if recorded < min_runs and settled.verdict in ("regression", "improvement"):
        # Beyond the assumed drift, but this runner's real drift between sessions is unknown until
        # min_runs sessions are recorded: shown, never a silent pass, yet no claim either way.
        return replace(settled, verdict="inconclusive", more_windows_help=False, reason=(
            f"{'worse' if settled.verdict == 'regression' else 'better'} beyond tolerance and beyond "
            f"{noise}, but the baseline has {recorded} recorded run{'s' if recorded != 1 else ''} and "
            f"this runner's drift between sessions is unknown until {min_runs} are (RUNS={min_runs} "
            f"make baselines, or pytest -m perf --update-baselines in {min_runs} sessions); "
            f"--ab-baseline measures the baseline's deployment beside this one instead"))
    return settled



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
    min_runs: int = DEFAULT_MIN_RUNS,
    run_drift: float = DEFAULT_RUN_DRIFT,
    pooled: Mapping[str, PooledDrift] | None = None,
    speed_mismatch: float = DEFAULT_SPEED_MISMATCH,
) -> list[MetricVerdict]:
    """One verdict per gated metric; a different ``hardware_key`` gives ``incomparable`` for all, and
    so does a speed probe more than ``speed_mismatch`` times faster or slower than the recording
    one's (the values still shown). ``pooled``: by metric, the drift pooled over this runner's
    baselines (``RunDriftPools``)."""
    hw_base = baseline_hardware(baseline)
    hw_cur = hardware_key(current_fingerprint) if current_fingerprint else hw_base
    if not baseline.fingerprint:
        hw_base = hw_cur
    tolerances = tolerances or {}
    verdicts = [
        judge_metric(
            metric,
            baseline.measurement.window_values(metric),
            current.window_values(metric),
            tolerance=tolerances.get(metric, tolerance),
            alpha=alpha,
            min_windows=min_windows,
            hardware_baseline=hw_base,
            hardware_current=hw_cur,
            baseline_runs=baseline.run_values(metric),
            min_runs=min_runs,
            run_drift=run_drift,
            pooled=(pooled or {}).get(metric),
        )
        for metric in gate
    ]
    # Verdicts already incomparable (another hardware key) keep their own reason.
    slower_or_faster = speed_mismatch_reason(baseline.fingerprint, current_fingerprint or {}, speed_mismatch)
    if not slower_or_faster:
        return verdicts
    return [v if v.verdict == "incomparable" else
            replace(v, verdict="incomparable", reason=slower_or_faster, more_windows_help=False)
            for v in verdicts]
