"""The judge on synthetic windows from known distributions (seeded, so every run sees the same data)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.judge import judge, judge_metric
from pytest_tfserving.gate.outcome import GatePolicy, verdict_fails
from pytest_tfserving.gate.relative import judge_relative
from pytest_tfserving.gate.verdicts import MetricVerdict, needs_more_windows
from tests.unit.gate.gate_factories import FINGERPRINT, MakeMeasurement, lognormal_p50s

WITHIN_RUN = 0.0  # run_drift 0 and min_runs 1: the windows' own noise, to test the rule itself


def verdicts_over_seeds(shift: float, *, cv: float = 0.03, n: int = 10, tolerance: float = 0.10,
                        metric: str = "p50_ms", seeds: int = 40, alpha: float = 0.01,
                        run_drift: float = WITHIN_RUN) -> Counter[str]:
    out: Counter[str] = Counter()
    for seed in range(seeds):
        base = lognormal_p50s(2 * seed, n=n, cv=cv)
        cur = lognormal_p50s(2 * seed + 1, n=n, cv=cv, shift=shift)
        verdict = judge_metric(metric, base, cur, tolerance=tolerance, alpha=alpha, run_drift=run_drift,
                               min_runs=1)
        out[verdict.verdict] += 1
    return out


def test_a_a_passes() -> None:
    assert verdicts_over_seeds(0.0) == Counter({"pass": 40})


def test_twenty_five_percent_slower_is_a_regression() -> None:
    assert verdicts_over_seeds(0.25) == Counter({"regression": 40})


def test_a_change_at_the_tolerance_is_called_a_regression_at_most_alpha_of_the_time() -> None:
    """The tolerance is in the test: a true +10 % at tolerance 10 % is no regression, so at most
    alpha of such runs may be called one (the old rule, point estimate beyond the tolerance plus
    evidence of any change, called about half of them)."""
    alpha, seeds = 0.05, 400
    counts = verdicts_over_seeds(0.10, cv=0.03, seeds=seeds, alpha=alpha)
    bound = alpha + 3 * (alpha * (1 - alpha) / seeds) ** 0.5
    assert counts["regression"] / seeds <= bound, counts
    assert counts["inconclusive"] > seeds / 4  # the estimate lands beyond it about half the time


def test_a_change_at_the_detectable_size_is_found_with_the_stated_power() -> None:
    """``detectable`` comes from a run's own noise estimate: take its median over runs of this noise,
    then runs with a true change of that size must be called regressions about 95 % of the time
    (a little less: the noise is estimated from 10 windows a side)."""
    figures = [judge_metric("p50_ms", lognormal_p50s(2 * k, cv=0.03), lognormal_p50s(2 * k + 1, cv=0.03),
                            run_drift=WITHIN_RUN, min_runs=1).detectable for k in range(21)]
    detectable = float(np.median([f for f in figures if f is not None]))
    assert 0.15 < detectable < 0.22
    seeds = 200
    counts = verdicts_over_seeds(detectable, cv=0.03, seeds=seeds, run_drift=WITHIN_RUN)
    assert counts["regression"] / seeds >= 0.88, counts
    half = verdicts_over_seeds((1 + detectable) ** 0.5 - 1, cv=0.03, seeds=seeds)
    assert half["regression"] / seeds < 0.6, half  # and a smaller change is not found as often


def test_small_shift_within_tolerance_passes_even_when_clearly_real() -> None:
    counts = verdicts_over_seeds(0.04, cv=0.005)  # clearly real, but only 4 %
    assert counts == Counter({"pass": 40})
    v = judge_metric("p50_ms", lognormal_p50s(0, cv=0.005), lognormal_p50s(1, cv=0.005, shift=0.04),
                     run_drift=WITHIN_RUN, min_runs=1)
    assert v.reason == "within tolerance"
    assert v.ci_low is not None and v.ci_low > 0.02  # real: the interval excludes no change


def test_big_noise_gives_inconclusive_not_regression() -> None:
    # Same distribution on both sides but wildly noisy windows: the medians can differ by > 10 %.
    counts = verdicts_over_seeds(0.0, cv=0.5, n=6)
    assert counts["regression"] == 0
    assert counts["inconclusive"] > 0


def test_inconclusive_asks_for_more_windows_when_the_windows_are_the_noise() -> None:
    base = [2.0, 3.0, 1.5, 2.6, 1.9, 2.2]
    cur = [2.6, 1.8, 3.4, 2.0, 3.1, 2.4]
    v = judge_metric("p50_ms", base, cur, run_drift=WITHIN_RUN, min_runs=1)
    assert v.verdict == "inconclusive"
    assert needs_more_windows(v)
    drift_bound = judge_metric("p50_ms", lognormal_p50s(0, cv=0.01), lognormal_p50s(1, cv=0.01, shift=0.3))
    assert drift_bound.verdict == "inconclusive" and not needs_more_windows(drift_bound)


def test_a_one_run_baseline_is_judged_against_the_drift_floor_and_claims_nothing() -> None:
    """With the default --perf-run-drift (6 %), +30 % on one recorded run is within what a new
    session may drift by at alpha 1 %; the verdict says how large a change it could have seen. +80 %
    is beyond it, but with one run this runner's real drift is unknown: inconclusive, naming the fix."""
    base, cur = lognormal_p50s(0, cv=0.01), lognormal_p50s(1, cv=0.01, shift=0.3)
    v = judge_metric("p50_ms", base, cur)
    assert v.verdict == "inconclusive" and "drift of 6% (--perf-run-drift)" in v.reason
    assert v.detectable is not None and 0.35 < v.detectable < 0.6
    far = judge_metric("p50_ms", base, lognormal_p50s(1, cv=0.01, shift=0.8))
    assert far.verdict == "inconclusive" and not needs_more_windows(far)
    assert "1 recorded run" in far.reason and "RUNS=5 make baselines" in far.reason
    assert "--ab-baseline" in far.reason
    trusted = judge_metric("p50_ms", base, lognormal_p50s(1, cv=0.01, shift=0.8), min_runs=1)
    assert trusted.verdict == "regression"


def test_improvement_when_faster_beyond_tolerance() -> None:
    assert verdicts_over_seeds(-0.20) == Counter({"improvement": 40})


def test_throughput_direction_is_higher_is_better() -> None:
    base = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1002.0]
    lower = [x * 0.8 for x in base]
    higher = [x * 1.2 for x in base]
    assert judge_metric("rps", base, lower, run_drift=WITHIN_RUN, min_runs=1).verdict == "regression"
    assert judge_metric("rps", base, higher, run_drift=WITHIN_RUN, min_runs=1).verdict == "improvement"
    # 10 % fewer requests per second is within a 10 % tolerance; 12 % fewer is not.
    steady = [1000.0] * 6
    assert judge_metric("rps", steady, [899.0] * 6, run_drift=WITHIN_RUN, min_runs=1).verdict == "regression"
    assert judge_metric("rps", steady, [905.0] * 6, run_drift=WITHIN_RUN, min_runs=1).verdict == "pass"


def test_per_metric_tolerance_is_honoured() -> None:
    base, cur = lognormal_p50s(3, cv=0.01), lognormal_p50s(4, cv=0.01, shift=0.15)
    within = {"run_drift": WITHIN_RUN, "min_runs": 1}
    assert judge_metric("p50_ms", base, cur, tolerance=0.10, **within).verdict == "regression"  # type: ignore[arg-type]
    assert judge_metric("p50_ms", base, cur, tolerance=0.20, **within).verdict == "pass"  # type: ignore[arg-type]


def test_too_few_windows_is_inconclusive() -> None:
    v = judge_metric("p50_ms", lognormal_p50s(0, n=3), lognormal_p50s(1, n=10, shift=0.5))
    assert v.verdict == "inconclusive"
    assert not needs_more_windows(v)  # the baseline is short: more current windows do not help
    assert "record the baseline again" in v.reason
    v = judge_metric("p50_ms", lognormal_p50s(0, n=10), lognormal_p50s(1, n=3, shift=0.5))
    assert needs_more_windows(v)


def test_missing_metric_is_inconclusive_and_more_windows_do_not_help() -> None:
    v = judge_metric("cpu_percent", [], [1.0] * 6)
    assert v.verdict == "inconclusive" and not needs_more_windows(v)
    assert "not measured in the baseline" in v.reason


def test_zero_windows_have_no_relative_change() -> None:
    assert judge_metric("error_rate", [0.0] * 6, [0.0] * 6).verdict == "pass"
    v = judge_metric("error_rate", [0.0] * 6, [0.1] * 6)
    assert v.verdict == "inconclusive" and "ceiling" in v.reason


def test_deterministic() -> None:
    base, cur = lognormal_p50s(5, cv=0.1), lognormal_p50s(6, cv=0.1, shift=0.12)
    assert judge_metric("p50_ms", base, cur) == judge_metric("p50_ms", base, cur)


def test_unknown_metric_and_bad_alpha_rejected() -> None:
    with pytest.raises(ValueError, match="unknown metric 'p42_ms'"):
        judge_metric("p42_ms", [1.0], [1.0])
    with pytest.raises(ValueError, match="alpha"):
        judge_metric("p50_ms", [1.0], [1.0], alpha=0.7)


def test_message_names_metric_values_change_ci_and_hardware() -> None:
    v = judge_metric("p50_ms", lognormal_p50s(0, cv=0.01), lognormal_p50s(1, cv=0.01, shift=0.3),
                     hardware_baseline="cpu=X; cores=2; gpus=none",
                     hardware_current="cpu=X; cores=2; gpus=none", run_drift=WITHIN_RUN, min_runs=1)
    text = v.message()
    assert v.verdict == "regression"
    assert text.startswith("p50_ms: regression")
    assert f"baseline {v.baseline:.4g}" in text and f"current {v.current:.4g}" in text
    assert "+30" in text or "+29" in text or "+31" in text
    assert "98% CI" in text and "p=" in text
    assert "both measured on cpu=X; cores=2; gpus=none" in text
    assert v.ci_low is not None and v.ci_high is not None and 0.1 < v.ci_low < v.change < v.ci_high  # type: ignore[operator]


def _baseline(m: Any, fp: dict[str, Any]) -> Baseline:
    return Baseline(nodeid="t.py::test", measurement=m, fingerprint=fp, created="2024-01-01T00:00:00+00:00")


def test_judge_gates_each_metric(make_measurement: MakeMeasurement) -> None:
    base = make_measurement(lognormal_p50s(0, cv=0.01))
    cur = make_measurement(lognormal_p50s(1, cv=0.01, shift=0.25))
    verdicts = judge(_baseline(base, FINGERPRINT), cur, FINGERPRINT, gate=("p50_ms", "rps", "p99_ms"),
                     tolerances={"p99_ms": 0.5}, run_drift=WITHIN_RUN, min_runs=1)
    by_metric = {v.metric: v for v in verdicts}
    assert by_metric["p50_ms"].verdict == "regression"
    assert by_metric["rps"].verdict == "regression"  # rps fell by 1/1.25
    assert by_metric["p99_ms"].verdict == "pass" and by_metric["p99_ms"].tolerance == 0.5


def test_hardware_mismatch_is_incomparable_never_regression(make_measurement: MakeMeasurement) -> None:
    base = make_measurement(lognormal_p50s(0, cv=0.01))
    cur = make_measurement(lognormal_p50s(1, cv=0.01, shift=0.5))
    other = {**FINGERPRINT, "cpu_model": "Other CPU", "logical_cores": 64}
    verdicts: list[MetricVerdict] = judge(_baseline(base, FINGERPRINT), cur, other)
    assert {v.verdict for v in verdicts} == {"incomparable"}
    assert all(verdict_fails(v) for v in verdicts)  # by default; --perf-hardware-mismatch=warn shows it only
    assert not any(verdict_fails(v, GatePolicy(hardware_mismatch_fails=False)) for v in verdicts)
    text = verdicts[0].message()
    assert "baseline measured on cpu=Test CPU @ 2.0GHz; cores=2" in text
    assert "current on cpu=Other CPU; cores=64" in text


def _interleaved(make_measurement: MakeMeasurement, ratio: float, cv: float, n: int = 8,
                 seed: int = 0) -> tuple[Any, Any]:
    # A B A B: a common slow drift affects both sides of each pair alike.
    drift = [1.0 + 0.2 * (i % 3) for i in range(n)]
    b = [d * x for d, x in zip(drift, lognormal_p50s(seed, n=n, cv=cv), strict=True)]
    a_raw = lognormal_p50s(seed + 100, n=n, cv=cv, median=2.0 * ratio)
    a = [d * x for d, x in zip(drift, a_raw, strict=True)]
    return make_measurement(a), make_measurement(b)


def test_relative_passes_when_upper_bound_within_ratio(make_measurement: MakeMeasurement) -> None:
    a, b = _interleaved(make_measurement, ratio=0.5, cv=0.02)
    v = judge_relative(a, b, "p50_ms", max_ratio=0.6, label_a="int8", label_b="fp32")
    assert v.verdict == "pass"
    assert v.ci_high is not None and v.ci_high <= 0.6
    assert "p50_ms int8/fp32: pass" in v.message() and "<= 0.6x" in v.message()


def test_relative_fails_when_lower_bound_beyond_ratio(make_measurement: MakeMeasurement) -> None:
    a, b = _interleaved(make_measurement, ratio=0.9, cv=0.02)
    v = judge_relative(a, b, "p50_ms", max_ratio=0.6)
    assert v.verdict == "fail" and verdict_fails(v)


def test_relative_inconclusive_when_ci_straddles(make_measurement: MakeMeasurement) -> None:
    a, b = _interleaved(make_measurement, ratio=0.6, cv=0.3, n=6)
    v = judge_relative(a, b, "p50_ms", max_ratio=0.6)
    assert v.verdict == "inconclusive" and needs_more_windows(v)


def test_relative_min_ratio_for_throughput(make_measurement: MakeMeasurement) -> None:
    a, b = _interleaved(make_measurement, ratio=0.5, cv=0.02)  # a twice as fast -> twice the rps
    assert judge_relative(a, b, "rps", min_ratio=1.5).verdict == "pass"
    assert judge_relative(a, b, "rps", min_ratio=3.0).verdict == "fail"


def test_relative_needs_a_bound(make_measurement: MakeMeasurement) -> None:
    a, b = _interleaved(make_measurement, ratio=0.5, cv=0.02)
    with pytest.raises(ValueError, match="max_ratio"):
        judge_relative(a, b, "p50_ms")
