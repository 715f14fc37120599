"""perf.compare's bounds (``judge_relative``): the stated one-sided confidence is the real coverage.

The coverage tests draw window pairs from ``benchmarks/compare_coverage.py``'s noise models (the offset
between the two server processes part of the error, AR(1) pairs, outliers) and run the real judge;
a miss rate whose 95 % Clopper-Pearson interval lies above the stated rate fails, and so does one
far below it (a bound made uselessly wide). Seeded, and sized so that a rule at the stated rate
passes with room to spare while the old ones (percentile bootstrap, the estimated autocorrelation,
no offset term) fail with room to spare (docs/GATE.md, "perf.compare: coverage").
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.gate.alpha_budget import AlphaSpender, SessionAlpha, per_verdict_look
from pytest_tfserving.gate.evidence import quantile
from pytest_tfserving.gate.outcome import relative_fails, verdict_fails
from pytest_tfserving.gate.relative import (
    PAIR_AUTOCORRELATION,
    ar1_mean_inflation,
    judge_relative,
    relative_evidence,
)
from pytest_tfserving.gate.verdicts import DEFAULT_INTERLEAVED_OFFSET, needs_more_windows
from pytest_tfserving.perf.settle import Limits
from tests.module_loading import load_benchmark

ALPHA = 0.01


@pytest.fixture(scope="module")
def cov() -> ModuleType:
    return load_benchmark("compare_coverage")


def _misses(cov: ModuleType, model: str, pairs: int, trials: int) -> tuple[int, int]:
    """Misses of either one-sided bound, and bound checks made (two per trial)."""
    with cov._calibration().fast_tails():
        c = cov.fixed_coverage(cov.pair_noise(model), pairs, trials, ALPHA, seed=1818)
    return c.miss_upper + c.miss_lower, 2 * trials


@pytest.mark.parametrize(
    ("model", "pairs", "trials"),
    [
        # 20 pairs on the quiet machine: the offset is half the error (no offset term: ~2.9 % misses).
        ("quiet", 20, 4000),
        # 10 pairs on the shared machine: the old rule (autocorrelation estimated from the pairs)
        # missed 1.5 %, the percentile bootstrap ~4 %; this rule ~0.9 %.
        ("pessimistic", 10, 6000),
    ],
)
def test_bounds_miss_as_often_as_stated(cov: ModuleType, model: str, pairs: int, trials: int) -> None:
    missed, checks = _misses(cov, model, pairs, trials)
    low, high = cov.clopper_pearson(missed, checks)
    rate = f"{missed}/{checks} = {missed / checks:.2%} [{low:.2%}, {high:.2%}]"
    assert low <= ALPHA, f"the {1 - ALPHA:.0%} bounds miss more often than stated: {rate}"
    assert high >= ALPHA / 4, f"the bounds are far wider than stated: {rate}"


def test_a_claim_that_holds_with_no_margin_fails_at_most_its_alpha(cov: ModuleType) -> None:
    """The whole call (first look at 5 pairs, one extension to 15, each look at its share of
    --perf-alpha): a true ratio exactly at max_ratio fails at most the call's alpha; an unsettled
    verdict at the cap does not fail on its point estimate (that alone failed about half of them)."""
    noise = cov.pair_noise("quiet")
    trials, rounds, max_rounds = 1500, 5, 15
    logs = cov.draw_log_ratios(noise, np.random.default_rng(18), trials, max_rounds, math.log(0.6))
    call_alpha = AlphaSpender(SessionAlpha(ALPHA).per_test()).next_call()
    with cov._calibration().fast_tails():
        verdicts = [cov.compare_call(row, rounds, max_rounds, 0.6, ALPHA) for row in logs]
    failed = sum(verdict_fails(v) for v in verdicts)
    low, high = cov.clopper_pearson(failed, trials)
    assert low <= call_alpha, f"{failed}/{trials} failed [{low:.2%}, {high:.2%}], alpha {call_alpha:.2%}"
    unsettled = [v for v in verdicts if v.verdict == "inconclusive"]
    assert len(unsettled) > trials / 2 and not any(relative_fails(v) for v in unsettled)
    # The stated confidence is the call's (two looks), which the final bounds keep (union bound).
    assert all(v.confidence == pytest.approx(1 - call_alpha) for v in verdicts)
    assert per_verdict_look(call_alpha, 1, 2) == pytest.approx(call_alpha / 2)
    missed = sum((v.ci_high or 0) < 0.6 for v in verdicts) + sum((v.ci_low or 0) > 0.6 for v in verdicts)
    low, high = cov.clopper_pearson(missed, 2 * trials)
    assert low <= call_alpha, f"final bounds miss {missed}/{2 * trials} [{low:.2%}, {high:.2%}]"


# --- verdicts -----------------------------------------------------------------------------------------


def _pair(cov: ModuleType, logs: list[float]) -> tuple[Any, Any]:
    return cov.pair_of(np.asarray(logs))


def test_ar1_mean_inflation() -> None:
    assert ar1_mean_inflation(0.0, 10) == 1.0
    assert ar1_mean_inflation(0.5, 3) == pytest.approx(1 + 2 * (2 / 3 * 0.5 + 1 / 3 * 0.25))
    # many pairs: the long-run factor (1 + rho) / (1 - rho)
    assert ar1_mean_inflation(0.2, 200) == pytest.approx((1 + 0.2) / (1 - 0.2), rel=0.02)


def test_the_window_part_is_widened_for_autocorrelated_pairs_and_the_offset_is_added() -> None:
    d = np.array([0.1, -0.05, 0.2, 0.0, 0.07, -0.1, 0.15])
    n, sd = d.size, float(d.std(ddof=1))
    g = ar1_mean_inflation(PAIR_AUTOCORRELATION, n)
    evidence = relative_evidence(d, 0.03)
    assert evidence.estimate == pytest.approx(d.mean())
    assert evidence.scale == pytest.approx(math.hypot(sd * math.sqrt(g / (n - g)), 0.03))
    assert relative_evidence(d, 0.0).scale > sd / math.sqrt(n) * 1.2  # wider than independent pairs
    assert n - 1 < evidence.df < math.inf


def test_identical_pairs_are_bounded_by_the_process_offset(cov: ModuleType) -> None:
    """No window noise at all: two processes still differ by the offset, so the bounds do not close."""
    a, b = _pair(cov, [math.log(0.5)] * 8)
    v = judge_relative(a, b, "p50_ms", max_ratio=0.6, alpha=ALPHA)
    z = quantile(1 - ALPHA, math.inf) * math.log1p(DEFAULT_INTERLEAVED_OFFSET)
    assert v.ratio == pytest.approx(0.5)
    assert v.ci_high == pytest.approx(0.5 * math.exp(z)) and v.ci_low == pytest.approx(0.5 * math.exp(-z))
    assert v.verdict == "pass"
    # 0.58x against <= 0.6x is within the offset's reach: not shown, whatever the number of pairs.
    a, b = _pair(cov, [math.log(0.58)] * 20)
    assert judge_relative(a, b, "p50_ms", max_ratio=0.6, alpha=ALPHA).verdict == "inconclusive"


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(0.45, "pass"), (0.6, "inconclusive"), (0.62, "inconclusive"), (0.8, "fail")],
)
def test_verdict_against_max_ratio(cov: ModuleType, ratio: float, expected: str) -> None:
    noise = [0.04, -0.03, 0.05, -0.06, 0.02, 0.0, -0.02, 0.03, -0.04, 0.01]  # sd ~0.036
    a, b = _pair(cov, [math.log(ratio) + e for e in noise])
    v = judge_relative(a, b, "p50_ms", max_ratio=0.6, alpha=ALPHA, label_a="int8", label_b="fp32")
    assert v.verdict == expected
    assert v.ci_low is not None and v.ci_high is not None and v.ci_low < v.ratio < v.ci_high  # type: ignore[operator]
    assert needs_more_windows(v) == (expected == "inconclusive")
    assert verdict_fails(v) == (expected == "fail")
    assert v.detectable is not None and 0 < v.detectable < 0.5
    assert f"settles a ratio {v.detectable:.1%} or more beyond the bound" in v.message()


def test_verdict_against_min_ratio(cov: ModuleType) -> None:
    """"a takes at least 1.5x b's p50" (e.g. a batching deployment's latency price)."""
    a, b = _pair(cov, [math.log(2.0) + e for e in (0.02, -0.01, 0.03, -0.02, 0.0, 0.01)])
    v = judge_relative(a, b, "p50_ms", min_ratio=1.5, alpha=ALPHA)
    assert v.verdict == "pass" and v.ratio == pytest.approx(2.0, rel=0.02)
    assert judge_relative(a, b, "p50_ms", min_ratio=2.6, alpha=ALPHA).verdict == "fail"
    assert judge_relative(a, b, "p50_ms", min_ratio=2.0, alpha=ALPHA).verdict == "inconclusive"


def test_looks_of_a_compare_call() -> None:
    """The alpha split the coverage test relies on: a call of 5 rounds up to 15 looks twice."""
    assert Limits.in_rounds(5, 15).looks() == 2


def test_five_pairs_at_the_levels_perf_compare_uses(cov: ModuleType) -> None:
    """A look is tested at 0.3 % (one test) down to 0.03 % (ten tests): there, degrees of freedom
    read at the window spread itself (a spread small by chance raising them) made 5 pairs miss
    about 2.5x the stated rate. ``relative_evidence`` directly, 60000 draws at 0.1 %."""
    alpha, trials, pairs = 0.001, 60000, 5
    logs = cov.draw_log_ratios(cov.pair_noise("quiet"), np.random.default_rng(5), trials, pairs)
    offset = math.log1p(DEFAULT_INTERLEAVED_OFFSET)
    missed = 0
    with cov._calibration().fast_tails():
        for row in logs:
            e = relative_evidence(row, offset)
            missed += abs(e.estimate) > e.half_width(alpha)  # the true log ratio is 0
    low, high = cov.clopper_pearson(missed, 2 * trials)
    assert low <= alpha <= high * 4, f"{missed}/{2 * trials} [{low:.3%}, {high:.3%}] at {alpha:.1%}"
