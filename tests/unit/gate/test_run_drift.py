"""The runner's drift pooled over baseline histories (``gate.run_drift``) and how the stored judge
uses it: the estimate's degrees of freedom travel with the floor."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.gate.baselines import Baseline, RunSummary
from pytest_tfserving.gate.judge import judge_metric
from pytest_tfserving.gate.run_drift import (
    PooledDrift,
    RunDriftPools,
    drifts_more_than_pool,
    pool_histories,
)
from tests.unit.gate.gate_factories import FINGERPRINT, build_measurement, lognormal_p50s


def test_pool_is_the_variance_of_log_run_medians_weighted_by_degrees_of_freedom() -> None:
    a, b = [1.0, 1.2, 0.9, 1.1, 1.05], [10.0, 13.0, 8.0]
    pooled = pool_histories([a, b])
    assert pooled is not None
    la, lb = np.log(a), np.log(b)
    squares = ((la - la.mean()) ** 2).sum() + ((lb - lb.mean()) ** 2).sum()
    assert pooled.df == 4 + 2 and pooled.histories == 2
    assert pooled.sd == pytest.approx(math.sqrt(squares / 6), rel=1e-12)
    # Scale-free: a test at 10 ms and one at 1 ms pool on the log scale.
    scaled, plain = pool_histories([[v * 7 for v in a]]), pool_histories([a])
    assert scaled is not None and plain is not None and scaled.sd == pytest.approx(plain.sd, rel=1e-12)


def test_histories_of_fewer_than_two_usable_runs_are_left_out() -> None:
    assert pool_histories([]) is None
    assert pool_histories([[2.0], [], [0.0, -1.0, float("nan"), 3.0]]) is None
    pooled = pool_histories([[2.0], [2.0, 2.2, float("inf")]])
    assert pooled is not None and (pooled.df, pooled.histories) == (1, 1)


def test_f_test_keeps_a_test_on_its_own_runs_only_when_they_drift_more() -> None:
    pool = PooledDrift(sd=0.05, df=40, histories=10)
    assert not drifts_more_than_pool(0.05, 4, pool)
    assert not drifts_more_than_pool(0.075, 4, pool)  # 2.25x the variance: F(4, 40) 95 % is 2.61
    assert drifts_more_than_pool(0.085, 4, pool)  # 2.89x


def _baseline(nodeid: str, runs: list[float], fingerprint: dict[str, Any]) -> Baseline:
    summaries = tuple(RunSummary(f"run {i}", {"p50_ms": v, "rps": 1000 / v}) for i, v in enumerate(runs))
    return Baseline(nodeid, build_measurement([runs[-1]] * 6), dict(fingerprint), "t", runs=summaries)


def test_pools_are_per_hardware_key_and_metric() -> None:
    other = {**FINGERPRINT, "cpu_model": "Other CPU"}
    here = [_baseline("a", [1.0, 1.1, 0.9], FINGERPRINT), _baseline("b", [2.0, 2.0, 2.0, 2.0], FINGERPRINT)]
    there = _baseline("c", [1.0, 2.0], other)
    pools = RunDriftPools.from_baselines([*here, there])
    mine = pools.for_baseline(here[1])
    assert set(mine) == {"p50_ms", "rps"}
    assert (mine["p50_ms"].df, mine["p50_ms"].histories) == (5, 2)
    assert mine["p50_ms"] == pool_histories([[1.0, 1.1, 0.9], [2.0] * 4])
    theirs = pools.for_baseline(there)["p50_ms"]
    assert (theirs.df, theirs.sd) == (1, pytest.approx(math.log(2) / math.sqrt(2)))
    assert RunDriftPools.from_baselines([]).for_baseline(there) == {}


# -- the judge --------------------------------------------------------------------------------------

AGREEING_RUNS = [2.0, 2.0, 2.01, 2.0, 1.99]  # five runs that agree closer than the 6 % floor


def test_five_agreeing_runs_alone_weigh_the_floor_on_four_degrees_of_freedom() -> None:
    """The sample of five can agree by chance: the floor is used with Student-t on 4 df, not as known."""
    base, cur = lognormal_p50s(0, cv=0.01), lognormal_p50s(1, cv=0.01, shift=0.3)
    alone = judge_metric("p50_ms", base, cur, baseline_runs=AGREEING_RUNS)
    pooled = judge_metric("p50_ms", base, cur, baseline_runs=AGREEING_RUNS,
                          pooled=PooledDrift(sd=0.02, df=60, histories=15))
    assert alone.verdict == "inconclusive", alone.message()
    assert pooled.verdict == "regression", pooled.message()
    assert alone.detectable is not None and pooled.detectable is not None
    assert alone.detectable > pooled.detectable + 0.1  # +60 % against +43 % at alpha 1 %
    assert "on the 60 degrees of freedom of the run-to-run drift pooled over 15" in pooled.message()


def test_a_pool_wider_than_the_floor_is_the_drift_and_a_pool_no_wider_than_the_runs_is_ignored() -> None:
    base, cur = lognormal_p50s(0, cv=0.01), lognormal_p50s(1, cv=0.01, shift=0.3)
    wide = judge_metric("p50_ms", base, cur, baseline_runs=AGREEING_RUNS,
                        pooled=PooledDrift(sd=0.25, df=60, histories=15))
    assert wide.verdict == "inconclusive"
    assert "within the run-to-run drift pooled over 15 baseline histories" in wide.message()
    tiny_pool = judge_metric("p50_ms", base, cur, baseline_runs=AGREEING_RUNS,
                             pooled=PooledDrift(sd=0.02, df=4, histories=1))  # no more df than the runs
    assert "4 degrees of freedom of the spread of 5 recorded runs" in tiny_pool.message()


def test_runs_drifting_more_than_the_pool_and_the_floor_are_judged_on_their_own() -> None:
    base, cur = lognormal_p50s(0, cv=0.01), lognormal_p50s(1, cv=0.01, shift=0.3)
    wild = [2.0, 2.5, 1.6, 2.3, 1.8]
    pool = PooledDrift(sd=0.02, df=60, histories=15)
    v = judge_metric("p50_ms", base, cur, baseline_runs=wild, pooled=pool)
    assert "within the spread of 5 recorded runs" in v.message()


def test_a_history_far_wider_than_the_rest_is_set_aside_from_the_pool() -> None:
    """The suite's Redis-cache test has a bimodal p50 (runs 0.7-85 ms): pooled with the others it made
    every test's p50 error ten times wider. Set aside, it is judged on its own runs."""
    steady = [[100.0 * (1 + 0.03 * ((i * 7 + k) % 5 - 2)) for k in range(5)] for i in range(8)]
    bimodal = [0.7, 85.0, 0.8, 80.0, 0.7]
    pooled = pool_histories([*steady, bimodal])
    assert pooled is not None and (pooled.histories, pooled.set_aside, pooled.df) == (8, 1, 32)
    reference = pool_histories(steady)
    assert reference is not None and (pooled.sd, pooled.df) == (reference.sd, reference.df)
    assert "1 drifting far more set aside" in pooled.describe()
    # Homogeneous histories keep every one: 10 draws of one drift, none set aside.
    rng = np.random.default_rng(3)
    same = [list(np.exp(rng.normal(0, 0.05, 5))) for _ in range(10)]
    kept = pool_histories(same)
    assert kept is not None and (kept.histories, kept.set_aside) == (10, 0)


def test_the_widest_history_is_the_one_with_the_largest_variance_not_the_most_squares() -> None:
    """A long history of modest spread has more squares than a short wild one; the wild one goes."""
    rng = np.random.default_rng(7)
    steady = [list(np.exp(rng.normal(0, 0.03, 5))) for _ in range(8)]
    long_modest = list(np.exp(rng.normal(0, 0.05, 30)))
    short_wild = [1.0, 1.3]  # fewer squares than the long one, ten times its variance
    pooled = pool_histories([*steady, long_modest, short_wild])
    assert pooled is not None and pooled.set_aside >= 1 and pooled.df >= 32 + 29, pooled
    assert "set aside" not in PooledDrift(sd=0.05, df=40, histories=10).describe()


def test_f_test_edges() -> None:
    flat = PooledDrift(sd=0.0, df=40, histories=10)
    assert not drifts_more_than_pool(0.0, 4, flat)  # both flat: nothing drifts more
    assert drifts_more_than_pool(0.01, 4, flat)
    one_run = PooledDrift(sd=0.05, df=40, histories=10)
    assert drifts_more_than_pool(0.5, 0, one_run) and not drifts_more_than_pool(0.0, 0, one_run)
    assert not drifts_more_than_pool(0.05, 1, one_run)  # one degree of freedom still gets the F test
