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
from pytest_tfserving.gate.evidence import Evidence, settle, welch_df
from pytest_tfserving.gate.paired import hodges_lehmann
from pytest_tfserving.gate.replica_spread import replica_offset, rotation_groups, rotation_share
from pytest_tfserving.gate.verdicts import (
    DEFAULT_ALPHA,
    DEFAULT_INTERLEAVED_OFFSET,
    DEFAULT_MIN_WINDOWS,
    DEFAULT_PAIRED_METHOD,
    DEFAULT_PROCESS_OFFSET,
    MetricVerdict,
    PairedMethod,
    RelativeOutcome,
    RelativeVerdict,
    check_alpha_and_tolerance,
    lower_is_better,
    unjudged,
)
from pytest_tfserving.load.results import Measurement

PAIR_AUTOCORRELATION = 0.2  # perf.compare's window pairs: lag-1 autocorrelation taken as known (docs/GATE.md)
WINDOW_PART_CONFIDENCE = 0.8  # perf.compare's degrees of freedom: at this upper limit of the window part
MAX_AUTOCORRELATION = 0.8  # beyond this the lag-1 estimate of a few pairs says more about trend than noise


def autocorrelation_factor(d: np.ndarray) -> float:
    """How much wider than ``sd / sqrt(n)`` the error of a mean of ``d`` is when consecutive pairs
    are correlated (AR(1): ``sqrt((1 + rho) / (1 - rho))``, rho the lag-1 autocorrelation, taken as
    0 when negative). On a shared runner neighbouring windows share a slow minute, and a drift
    within the session shows as correlation too; treating the pairs as independent made the
    bounds miss 2-4 times as often as stated (docs/GATE.md, calibration)."""
    if d.size < 3:
        return 1.0
    centred = d - d.mean()
    denominator = float(np.dot(centred, centred))
    if denominator <= 0:
        return 1.0
    estimated = float(np.dot(centred[1:], centred[:-1])) / denominator
    # The lag-1 estimate of a few pairs runs low by about (1 + 3 rho) / n (Kendall); undo that,
    # so that five independent pairs still count as possibly correlated ones.
    n = d.size
    rho = (n * estimated + 1) / (n - 3) if n > 3 else MAX_AUTOCORRELATION
    rho = min(max(rho, 0.0), MAX_AUTOCORRELATION)
    return math.sqrt((1 + rho) / (1 - rho))


def paired_evidence(
    d: np.ndarray, method: PairedMethod, offset_sd: float, groups: np.ndarray | None = None
) -> tuple[Evidence, bool]:
    """The change from paired log ratios ``d`` and the standard error around it.

    ``signed_rank``: the Hodges-Lehmann estimate (median of the Walsh averages; one window hit by a
    neighbour moves it little) with standard error ``sqrt(pi / 3) * sd / sqrt(n)`` (its efficiency
    under normal noise); ``student_t``: the mean and ``sd / sqrt(n)``. Both are widened for
    correlated consecutive pairs (``autocorrelation_factor``). Two server processes of one
    deployment differ by a persistent offset (docs/GATE.md measured sd 1.5 % at concurrency 1),
    which no number of pairs averages out: ``offset_sd`` enters the error as a known part, and the
    degrees of freedom follow Welch-Satterthwaite. Returns the evidence and whether more pairs would
    still narrow it noticeably (window noise at least half the offset).

    ``groups``: the replica (server process of each side) each pair ran on, under --ab-replicas.
    The pairs then average over the replicas' offsets: the offset part shrinks to
    ``offset_sd * sqrt(sum n_j^2) / n`` (``/ sqrt(m)`` balanced), and ``offset_sd`` is replaced by
    the replicas' spread in the data when that is larger with confidence (``replica_spread``).
    """
    n = d.size
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if method == "signed_rank":
        estimate = hodges_lehmann(d)
        within = math.sqrt(math.pi / 3) * sd / math.sqrt(n)
    else:
        estimate = float(d.mean())
        within = sd / math.sqrt(n)
    within *= autocorrelation_factor(d)
    offset = offset_sd
    if groups is not None and groups.size == n:
        offset = replica_offset(d, groups, offset_sd)[0] * rotation_share(groups)
    scale = math.hypot(within, offset)
    return Evidence(estimate, scale, welch_df(offset, within, n)), within >= offset / 2


def ar1_mean_inflation(rho: float, n: int) -> float:
    """``n * Var(mean) / sigma^2`` for ``n`` consecutive values of a stationary AR(1) series with
    lag-1 autocorrelation ``rho``: ``1 + 2 * sum_k (1 - k/n) rho^k`` (1 when independent)."""
    return 1 + 2 * sum((1 - k / n) * rho**k for k in range(1, n))


def relative_evidence(d: np.ndarray, offset_sd: float, rho: float = PAIR_AUTOCORRELATION) -> Evidence:
    """The mean log ratio of ``d`` (perf.compare's window pairs) and its error, for one-sided bounds
    whose stated confidence is their coverage (``benchmarks/compare_coverage.py``, docs/GATE.md).

    - Five to twenty pairs cannot tell their own autocorrelation (the lag-1 estimate of ten pairs
      has an sd near 0.3: a bound widened by it is as often too narrow as too wide), so ``rho`` is
      taken as known, like the offset. For AR(1) pairs the mean's variance is ``sigma^2 g / n`` and
      the sample variance runs low, ``E[s^2] = sigma^2 (n - g) / (n - 1)`` (``g =
      ar1_mean_inflation``), so the window part of the error is ``s * sqrt(g / (n - g))``.
    - The offset between the two server processes (``offset_sd``, log scale) is a known part that
      no number of pairs averages out.
    - Welch-Satterthwaite degrees of freedom, taken at the upper ``WINDOW_PART_CONFIDENCE`` limit
      of the window part: read at the estimate itself, a spread small by chance both narrows the
      bound and raises the degrees of freedom, and the bounds of 5 pairs missed up to 2.6x the
      stated rate at the levels perf.compare uses (0.3 % to 0.03 % per look).
    """
    from scipy.special import chdtri

    n = d.size
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    g = ar1_mean_inflation(rho, n)
    within = sd * math.sqrt(g / (n - g))
    df = math.inf
    if within > 0 and n > 1:
        # chdtri(k, p): the chi-square(k) value exceeded with probability p.
        upper = within * math.sqrt((n - 1) / float(chdtri(n - 1, WINDOW_PART_CONFIDENCE)))
        df = welch_df(offset_sd, upper, n)
    return Evidence(float(d.mean()), math.hypot(within, offset_sd), df)


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
    offset_sd: float = DEFAULT_PROCESS_OFFSET,
    replicas: int = 1,
) -> MetricVerdict:
    """Judge the current deployment against the baseline's own deployment, measured in paired
    windows (window i of each side ran in the same moments), so machine drift cancels in each pair.
    ``replicas``: server processes per side, pair ``i`` measured on replica ``i mod replicas`` of
    each (--ab-replicas; ``paired_evidence`` averages their offsets).

    On the log ratios ``d_i = log(current_i / reference_i)``: ``paired_evidence``, then
    ``evidence.settle`` (a regression needs the one-sided ``1 - alpha`` bound beyond the tolerance).
    """
    lower_is_better(metric)
    check_alpha_and_tolerance(alpha, tolerance)
    if method not in ("signed_rank", "student_t"):
        raise ValueError(f"method={method!r}: use 'signed_rank' or 'student_t'")
    if not (math.isfinite(offset_sd) and offset_sd >= 0):
        raise ValueError(f"offset_sd={offset_sd!r} must be >= 0 (relative sd between two server processes)")
    if not (isinstance(replicas, int) and replicas >= 1):
        raise ValueError(f"replicas={replicas!r} must be a whole number >= 1 (server processes per side)")
    indexed = [
        (i, float(r), float(c))
        for i, (r, c) in enumerate(zip(reference_values, current_values, strict=False))
        if r > 0 and c > 0 and math.isfinite(r) and math.isfinite(c)
    ]
    pairs = [(r, c) for _, r, c in indexed]
    groups = rotation_groups(len(reference_values), replicas)[[i for i, _, _ in indexed]]
    judged = unjudged(
        metric, tolerance=tolerance, alpha=alpha, n_baseline=len(pairs), n_current=len(pairs),
        hardware_baseline=hardware, hardware_current=hardware, paired=True,
    )
    need = max(min_windows, 3)
    if len(pairs) < need:
        return replace(judged, more_windows_help=True,
                       reason=f"{len(pairs)} positive window pairs, need {need}")
    values = np.asarray(pairs)
    logs = np.log(values[:, 1]) - np.log(values[:, 0])
    evidence, more = paired_evidence(logs, method, math.log1p(offset_sd),
                                     groups if replicas > 1 else None)
    judged = replace(
        judged,
        baseline=float(np.median(values[:, 0])),
        current=float(np.median(values[:, 1])),
        change=math.expm1(evidence.estimate),
    )
    noise = f"the window pairs' noise and a {offset_sd:.1%} offset between server processes"
    if replicas > 1:
        noise += f", averaged over {replicas} processes per side"
    return settle(judged, evidence, alpha, noise=noise, more_windows_help=more)


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
    offset_sd: float = DEFAULT_PROCESS_OFFSET,
    replicas: int = 1,
) -> list[MetricVerdict]:
    """One paired verdict per gated metric: ``current`` and ``reference`` from ``measure_interleaved``
    or ``measure_alternating``; ``replicas``: processes per side, window ``i`` on replica ``i mod m``."""
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
            offset_sd=offset_sd,
            replicas=replicas,
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
    offset_sd: float = DEFAULT_INTERLEAVED_OFFSET,
    label_a: str = "a",
    label_b: str = "b",
) -> RelativeVerdict:
    """Compare ``a`` with ``b`` window by window (windows measured interleaved: A B B A ...).

    Ratio = geometric mean of a_i/b_i over pairs; its one-sided ``1 - alpha`` bounds are Student-t
    bounds of the mean log ratio (``relative_evidence``: pairs autocorrelated by
    ``PAIR_AUTOCORRELATION``, the offset between two server processes, ``offset_sd`` relative, as a
    known part of the error). ``max_ratio``:
    pass when the upper bound <= max_ratio, fail when the lower bound > max_ratio. ``min_ratio``:
    pass when the lower bound >= min_ratio, fail when the upper bound < min_ratio. Otherwise
    inconclusive (more pairs may settle it). A true ratio within the bound fails at most ``alpha``
    of the time.
    """
    lower_is_better(metric)
    if max_ratio is None and min_ratio is None:
        raise ValueError("judge_relative needs max_ratio (e.g. 0.6 for 'a <= 0.6x b') and/or min_ratio")
    for name, bound in (("max_ratio", max_ratio), ("min_ratio", min_ratio)):
        if bound is not None and not (math.isfinite(bound) and bound > 0):
            raise ValueError(f"{name}={bound!r} must be a positive number")
    check_alpha_and_tolerance(alpha, 0.0)
    pairs = [
        (va, vb) for wa, wb in zip(a.windows, b.windows, strict=False)
        if (va := wa.metric(metric)) is not None and (vb := wb.metric(metric)) is not None
        and va > 0 and vb > 0 and math.isfinite(va) and math.isfinite(vb)
    ]
    need = max(min_windows, 2)
    empty = RelativeVerdict(
        metric=metric, verdict="inconclusive", ratio=None, ci_low=None, ci_high=None, max_ratio=max_ratio,
        min_ratio=min_ratio, n_pairs=len(pairs), confidence=1 - alpha, label_a=label_a, label_b=label_b,
        reason=f"{len(pairs)} positive window pairs, need {need}", more_windows_help=True,
    )
    if len(pairs) < need:
        return empty
    logs = np.log(np.asarray(pairs)[:, 0]) - np.log(np.asarray(pairs)[:, 1])
    evidence = relative_evidence(logs, math.log1p(offset_sd))
    half = evidence.half_width(alpha)
    low, high = math.exp(evidence.estimate - half), math.exp(evidence.estimate + half)
    ratio = math.exp(evidence.estimate)
    fails = (max_ratio is not None and low > max_ratio) or (min_ratio is not None and high < min_ratio)
    passes = (max_ratio is None or high <= max_ratio) and (min_ratio is None or low >= min_ratio)
    if fails:
        outcome: RelativeOutcome = "fail"
        reason = "the ratio is beyond the bound with confidence"
    elif passes:
        outcome, reason = "pass", "the ratio is within the bound with confidence"
    else:
        outcome, reason = "inconclusive", "the confidence interval straddles the bound"
    detectable = math.expm1(evidence.detectable_log(alpha, 0.0))
    return replace(empty, verdict=outcome, ratio=ratio, ci_low=low, ci_high=high, reason=reason,
                   more_windows_help=outcome == "inconclusive", detectable=detectable)


def stated_over_looks(verdict: RelativeVerdict, look_alpha: float, looks: int) -> RelativeVerdict:
    """The confidence a perf.compare verdict states: its bounds are the last look's, and a call that
    may look ``looks`` times, each at ``look_alpha``, ends with bounds that miss at most
    ``looks * look_alpha`` of the time per side (union bound; simulated 0.36-0.38 % against 0.61 %
    for 5 -> 15 pairs on the quiet model, where the last look's own level, 0.30 %, was exceeded)."""
    return replace(verdict, confidence=1 - look_alpha * max(1, looks))
