"""The open loop's schedule: constant gaps or Poisson arrivals (exponential gaps), seeded."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from pytest_tfserving.load.loops import LoopPlan, arrival_offsets


def _offsets(arrival: str, n: int, seed: int = 0) -> np.ndarray:
    return np.fromiter(itertools.islice(arrival_offsets(200.0, arrival, seed), n), dtype=float)


def test_constant_schedule_is_exact_without_drift() -> None:
    offsets = _offsets("constant", 100_001)
    assert offsets[0] == 0.0 and offsets[-1] == pytest.approx(500.0, abs=1e-9)
    assert np.allclose(np.diff(offsets), 0.005)


def test_poisson_gaps_are_exponential_with_the_rate() -> None:
    gaps = np.diff(_offsets("poisson", 20_000))
    assert gaps.mean() == pytest.approx(0.005, rel=0.03)
    assert stats.kstest(gaps, "expon", args=(0, 0.005)).pvalue > 0.001
    assert np.array_equal(_offsets("poisson", 50, seed=1), _offsets("poisson", 50, seed=1))
    assert not np.array_equal(_offsets("poisson", 50, seed=1), _offsets("poisson", 50, seed=2))


def test_plan_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="rate"):
        LoopPlan(mode="open", rate=0)
    with pytest.raises(ValueError, match="arrival"):
        LoopPlan(mode="open", rate=5, arrival="bursty")
    with pytest.raises(ValueError, match="concurrency"):
        LoopPlan(mode="closed", concurrency=0)
