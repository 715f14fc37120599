"""Judges of two deployments measured side by side: ``judge_paired`` (the baseline's deployment served
beside the current one, --ab-baseline) and ``judge_relative`` (an in-run claim such as "int8 <= 0.6x
fp32"). Windows are interleaved, so machine drift cancels in each pair. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from pytest_tfserving.gate.ceilings import DEFAULT_GATE, DEFAULT_TOLERANCE
from pytest_tfserving.gate.paired import min_pairs_signed_rank, signed_rank, student_t
from pytest_tfserving.gate.verdicts import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MIN_WINDOWS,
    DEFAULT_PAIRED_METHOD,
    DEFAULT_SEED,
    MetricVerdict,
    PairedMethod,
    RelativeOutcome,
    RelativeVerdict,
    check_alpha_and_tolerance,
    decide,
    lower_is_better,
    unjudged,
)
from pytest_tfserving.load.results import Measurement


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
    lower_better = lower_is_better(metric)
    check_alpha_and_tolerance(alpha, tolerance)
    if method not in ("signed_rank", "student_t"):
        raise ValueError(f"method={method!r}: use 'signed_rank' or 'student_t'")
    pairs = [
        (float(r), float(c)) for r, c in zip(reference_values, current_values, strict=False)
        if r > 0 and c > 0 and math.isfinite(r) and math.isfinite(c)
    ]
    judged = unjudged(
        metric, tolerance=tolerance, alpha=alpha, n_baseline=len(pairs), n_current=len(pairs),
        hardware_baseline=hardware, hardware_current=hardware, paired=True,
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
    return decide(judged, worse, evidence, regression="worse beyond tolerance",
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
    lower_is_better(metric)
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
