"""The one rule every judge ends in (gate/evidence.py) and the evidence the judges build, on exact
values: quantiles, degrees of freedom, thresholds by direction, p-values and what a verdict could
detect. Written against the mutants mutmut found alive (scripts/mutation.sh)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, t

from pytest_tfserving.gate.evidence import (
    POWER,
    Evidence,
    quantile,
    relative_change_of,
    settle,
    thresholds,
    upper_tail,
    welch_df,
)
from pytest_tfserving.gate.judge import judge_metric, stored_evidence
from pytest_tfserving.gate.relative import autocorrelation_factor, paired_evidence
from pytest_tfserving.gate.verdicts import unjudged


def blank(metric: str = "p50_ms", tolerance: float = 0.10):  # type: ignore[no-untyped-def]
    return unjudged(metric, tolerance=tolerance, alpha=0.01, n_baseline=10, n_current=10,
                    hardware_baseline="h", hardware_current="h")


def test_quantiles_and_tails_are_student_t_with_finite_df_and_normal_without() -> None:
    assert quantile(0.99, 5) == pytest.approx(float(t.ppf(0.99, 5)))
    assert quantile(0.99, math.inf) == pytest.approx(float(norm.ppf(0.99)))
    assert quantile(0.99, 5) > quantile(0.99, math.inf) + 0.9
    assert upper_tail(2.0, 4) == pytest.approx(float(t.sf(2.0, 4)))
    assert upper_tail(2.0, math.inf) == pytest.approx(float(norm.sf(2.0)))


def test_welch_satterthwaite_degrees_of_freedom() -> None:
    assert welch_df(0.0, 1.0, 10) == pytest.approx(9.0)  # all estimated: n - 1
    assert welch_df(1.0, 1.0, 10) == pytest.approx(36.0)  # (1 + 1)^2 / (1 / 9)
    assert welch_df(0.5, 0.2, 6) == pytest.approx((0.25 + 0.04) ** 2 / (0.2**4 / 5))
    assert welch_df(0.0, 1.0, 2) == pytest.approx(1.0)
    assert math.isinf(welch_df(1.0, 0.0, 10)) and math.isinf(welch_df(1.0, 0.5, 1))
    assert welch_df(0.0, 0.5, 10) == pytest.approx(9.0)  # a small estimated part is still estimated


def test_thresholds_follow_the_metrics_direction() -> None:
    assert thresholds(0.10, 1) == pytest.approx((math.log(1.1), -math.log(0.9)))
    assert thresholds(0.10, -1) == pytest.approx((-math.log(0.9), math.log(1.1)))
    worse, better = thresholds(1.0, 1)
    assert worse == pytest.approx(math.log(2.0)) and math.isinf(better)
    assert thresholds(0.5, 1)[1] == pytest.approx(math.log(2.0))  # latency halved: 50 % better


def test_relative_change_reads_as_latency_up_or_throughput_down() -> None:
    assert relative_change_of(math.log(1.2), 1) == pytest.approx(0.2)
    assert relative_change_of(-math.log(0.8), -1) == pytest.approx(0.2)  # rps down 20 %
    assert relative_change_of(math.log(1.25), -1) == pytest.approx(0.2)


def test_settle_on_exact_evidence() -> None:
    """p50 +30 % with standard error 0.05, normal, alpha 1 %, tolerance 10 %."""
    evidence = Evidence(math.log(1.3), 0.05)
    v = settle(blank(), evidence, 0.01, noise="N", more_windows_help=True)
    z = float(norm.ppf(0.99))
    assert v.verdict == "regression" and v.reason == "worse beyond tolerance, beyond N"
    assert v.ci_low == pytest.approx(1.3 * math.exp(-z * 0.05) - 1)
    assert v.ci_high == pytest.approx(1.3 * math.exp(z * 0.05) - 1)
    assert v.p_value == pytest.approx(float(norm.sf((math.log(1.3) - math.log(1.1)) / 0.05)))
    assert v.detectable == pytest.approx(1.1 * math.exp((z + float(norm.ppf(POWER))) * 0.05) - 1)

    # rps down 30 %: the worse side for throughput, its p-value and detectable figure as a drop.
    r = settle(blank("rps"), Evidence(math.log(0.7), 0.05), 0.01, noise="N", more_windows_help=False)
    assert r.verdict == "regression"
    assert r.p_value == pytest.approx(float(norm.sf((-math.log(0.7) + math.log(0.9)) / 0.05)))
    assert r.detectable == pytest.approx(1 - 0.9 * math.exp(-(z + float(norm.ppf(POWER))) * 0.05))


def test_settle_names_each_outcome() -> None:
    def verdict(change: float, scale: float, more: bool = False, metric: str = "p50_ms"):  # type: ignore[no-untyped-def]
        return settle(blank(metric), Evidence(math.log1p(change), scale), 0.01, noise="N",
                      more_windows_help=more)

    better = verdict(-0.3, 0.02)
    assert (better.verdict, better.reason) == ("improvement", "better beyond tolerance, beyond N")
    unshown = verdict(-0.3, 0.2)
    assert (unshown.verdict, unshown.reason) == ("pass", "better beyond tolerance, but within N")
    assert unshown.p_value == pytest.approx(float(norm.sf((-math.log(0.7) + math.log(0.9)) / 0.2)))
    worse = verdict(0.3, 0.2, more=True)
    assert worse.verdict == "inconclusive" and worse.more_windows_help
    assert worse.reason == "worse beyond tolerance but within N; more windows may settle it"
    stuck = verdict(0.3, 0.2)
    assert stuck.reason == "worse beyond tolerance but within N" and not stuck.more_windows_help
    within = verdict(0.05, 0.01)
    assert (within.verdict, within.reason) == ("pass", "within tolerance")
    # Exactly known (scale 0): beyond the tolerance is certain, within it is certainly not.
    certain = verdict(0.3, 0.0)
    assert certain.verdict == "regression" and certain.p_value == 0.0
    assert verdict(-0.3, 0.0).p_value == 0.0 and verdict(0.05, 0.0).p_value == 1.0
    assert verdict(0.3, math.inf).detectable is None


def test_paired_evidence_standard_error_and_the_offset() -> None:
    d = np.array([0.01, -0.01] * 5)  # alternating: no positive autocorrelation to allow for
    assert autocorrelation_factor(d) == 1.0
    sd = float(d.std(ddof=1))
    ranks, more = paired_evidence(d, "signed_rank", 0.0)
    assert ranks.scale == pytest.approx(math.sqrt(math.pi / 3) * sd / math.sqrt(10))
    assert ranks.df == pytest.approx(9.0) and more
    mean, _ = paired_evidence(d, "student_t", 0.02)
    assert mean.scale == pytest.approx(math.hypot(sd / math.sqrt(10), 0.02))
    assert mean.df == pytest.approx(welch_df(0.02, sd / math.sqrt(10), 10))
    # Window noise under half the offset: more pairs would barely narrow it.
    assert not paired_evidence(d, "student_t", 3 * sd / math.sqrt(10))[1]
    assert paired_evidence(d, "student_t", 2 * sd / math.sqrt(10))[1]
    one, _ = paired_evidence(np.array([0.05]), "student_t", 0.01)
    assert one.scale == pytest.approx(0.01) and math.isinf(one.df)


def test_correlated_pairs_widen_the_error() -> None:
    trend = np.linspace(-0.05, 0.05, 12)  # a drift within the session: strongly correlated pairs
    factor = autocorrelation_factor(trend)
    assert factor == pytest.approx(math.sqrt(1.8 / 0.2))  # clipped at rho 0.8
    sd = float(trend.std(ddof=1))
    evidence, _ = paired_evidence(trend, "student_t", 0.0)
    assert evidence.scale == pytest.approx(factor * sd / math.sqrt(12))
    # Few pairs of independent noise still count as possibly correlated (the lag-1 estimate of a
    # few values runs low), so five pairs get wider bounds than twenty of the same spread.
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.02, 400)
    assert np.mean([autocorrelation_factor(noise[i:i + 5]) for i in range(0, 400, 5)]) > 1.2
    assert np.mean([autocorrelation_factor(noise[i:i + 20]) for i in range(0, 400, 20)]) < 1.2
    assert autocorrelation_factor(np.array([0.1, 0.2])) == 1.0
    assert autocorrelation_factor(np.zeros(6)) == 1.0


def test_stored_evidence_parts() -> None:
    cur = np.array([2.0, 2.1, 1.9, 2.05, 1.95, 2.0])
    base = np.array([1.0, 1.05, 0.95, 1.0, 1.02, 0.98])
    runs = np.array([1.0, 1.3, 0.8, 1.1, 0.9])  # spread far above the 6 % floor
    evidence, centre, used, noise, more = stored_evidence(base, cur, runs, min_runs=5, run_drift=0.06)
    logs = np.log(runs)
    assert centre == pytest.approx(math.exp(float(logs.mean()))) and used == 5
    assert evidence.df == pytest.approx(4.0) and noise == "the spread of 5 recorded runs"
    se_current = math.sqrt(math.pi / 2) * float(np.log(cur).std(ddof=1)) / math.sqrt(6)
    spread = float(logs.std(ddof=1))
    assert evidence.scale == pytest.approx(math.sqrt(spread**2 * 1.2 + se_current**2))
    assert evidence.estimate == pytest.approx(math.log(2.0) - float(logs.mean()))
    assert not more
    # Four runs are not enough for min_runs 5: the latest run's windows are the centre, the floor
    # the drift, taken as known.
    evidence, centre, used, noise, _ = stored_evidence(base, cur, runs[:4], min_runs=5, run_drift=0.06)
    assert used == 0 and centre == pytest.approx(1.0) and math.isinf(evidence.df)
    se_base = math.sqrt(math.pi / 2) * float(np.log(base).std(ddof=1)) / math.sqrt(6)
    floor = math.log1p(0.06)
    assert evidence.scale == pytest.approx(math.sqrt(floor**2 * 2 + se_current**2 + se_base**2))
    # No floor: the windows are all there is, on Welch's degrees of freedom (6 windows a side).
    evidence, _, _, noise, more = stored_evidence(base, cur, runs[:1], min_runs=5, run_drift=0.0)
    assert noise == "the windows' own noise (--perf-run-drift 0)" and more
    assert evidence.df == pytest.approx(5.0)
    # Two runs with min_runs 2 are a history.
    assert stored_evidence(base, cur, runs[:2], min_runs=2, run_drift=0.06)[2] == 2


def test_more_windows_help_only_when_the_windows_are_the_noise() -> None:
    noisy = [1.0, 1.6, 0.7, 1.4, 0.8, 1.3]
    windows_bound = judge_metric("p50_ms", noisy, [x * 1.5 for x in noisy], run_drift=0.01, min_runs=1)
    assert windows_bound.verdict == "inconclusive" and windows_bound.more_windows_help
    calm = [1.0, 1.01, 0.99, 1.0, 1.0, 1.01]
    drift_bound = judge_metric("p50_ms", calm, [x * 1.3 for x in calm], min_runs=1)
    assert drift_bound.verdict == "inconclusive" and not drift_bound.more_windows_help
