"""--ab-replicas in the paired judge: the offset between server processes averages over the replicas
by sqrt(m) for a balanced rotation, never drops below the known offset's share, and replicas that
disagree beyond the known offset widen the bound (their spread is taken from the data)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_tfserving.gate.relative import judge_paired, paired_evidence
from pytest_tfserving.gate.replica_spread import (
    estimated_spread,
    replica_offset,
    rotation_groups,
    rotation_share,
)

OFFSET = 0.015


def quiet_pairs(n: int, seed: int = 0, sd: float = 0.002) -> np.ndarray:
    """Paired log ratios with little window noise, so the offset part dominates the error."""
    return np.random.default_rng(seed).normal(0.0, sd, n)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_a_balanced_rotation_keeps_one_over_sqrt_m_of_the_offset(m: int) -> None:
    assert rotation_share(rotation_groups(12 * m, m)) == pytest.approx(1 / math.sqrt(m))


def test_an_unbalanced_rotation_keeps_more() -> None:
    # 7 pairs over 3 replicas: 3, 2, 2 pairs; the mean keeps sqrt(9 + 4 + 4) / 7 of the offset.
    assert rotation_share(rotation_groups(7, 3)) == pytest.approx(math.sqrt(17) / 7)
    assert rotation_share(rotation_groups(7, 3)) > 1 / math.sqrt(3)


def test_the_rotation_continues_from_where_a_run_stopped() -> None:
    assert rotation_groups(4, 3, first=7).tolist() == [1, 2, 0, 1]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_the_error_shrinks_with_sqrt_m_and_not_below(m: int) -> None:
    d = quiet_pairs(24)
    alone, _ = paired_evidence(d, "student_t", OFFSET)
    rotated, _ = paired_evidence(d, "student_t", OFFSET, rotation_groups(24, m))
    within = math.sqrt(alone.scale**2 - OFFSET**2)
    assert math.sqrt(rotated.scale**2 - within**2) == pytest.approx(OFFSET / math.sqrt(m), rel=1e-6)


def test_identical_replicas_never_count_for_less_than_the_known_offset() -> None:
    # The pairs of each replica agree perfectly: the data says "no spread", the judge keeps the
    # known offset (divided by sqrt(m) for the rotation), never less.
    d = np.tile([0.01, -0.01, 0.0, 0.005], 6)
    groups = rotation_groups(d.size, 3)
    offset, from_data = replica_offset(d, groups, OFFSET)
    assert (offset, from_data) == (OFFSET, False)
    evidence, _ = paired_evidence(d, "student_t", OFFSET, groups)
    assert evidence.scale >= OFFSET / math.sqrt(3)


def test_replicas_that_disagree_beyond_the_known_offset_widen_the_bound() -> None:
    # Replica 0 and 1 of the current side are 9 % slower than their references, replica 2 3 % faster:
    # the mean is +5 %, the window noise tiny. With the known 1.5 % offset over 3 replicas the bound
    # would clear 0; the replicas' spread in the data (about 7 %) says the +5 % may be the processes.
    n = 21
    groups = rotation_groups(n, 3)
    d = np.array([0.09, 0.09, -0.03])[groups] + quiet_pairs(n, seed=1)
    spread = estimated_spread(d, groups)
    assert spread is not None and spread[0] == pytest.approx(0.069, abs=0.005)
    offset, from_data = replica_offset(d, groups, OFFSET)
    assert from_data and offset > 3 * OFFSET
    verdict = judge_paired("p50_ms", [1.0] * n, np.exp(d).tolist(), tolerance=0.0, alpha=0.01, replicas=3,
                           offset_sd=OFFSET, method="student_t")
    assert verdict.verdict != "regression"
    # Taking only the known offset over the 3 replicas, the 99 % bound would clear 0: a false alarm.
    known_only, _ = paired_evidence(d, "student_t", math.log1p(OFFSET) / math.sqrt(3))
    assert known_only.estimate - known_only.half_width(0.01) > 0


def test_judge_paired_is_more_sensitive_with_replicas_and_says_so() -> None:
    # +4 % with little window noise: one process per side cannot tell it from a 1.5 % offset at this
    # alpha, four can.
    n = 20
    reference = [2.0] * n
    current = (2.0 * np.exp(0.04 + quiet_pairs(n, seed=2))).tolist()
    one = judge_paired("p50_ms", reference, current, tolerance=0.0, alpha=1e-4, offset_sd=OFFSET)
    four = judge_paired("p50_ms", reference, current, tolerance=0.0, alpha=1e-4, offset_sd=OFFSET,
                        replicas=4)
    assert one.verdict == "inconclusive"
    assert four.verdict == "regression"
    assert "averaged over 4 processes per side" in four.message()


def test_a_rotation_that_is_not_a_whole_number_is_refused() -> None:
    with pytest.raises(ValueError, match="replicas=0 must be a whole number >= 1"):
        judge_paired("p50_ms", [1.0] * 8, [1.0] * 8, replicas=0)


def test_an_extension_continues_the_rotation_where_the_first_look_stopped() -> None:
    from pytest_tfserving.perf.beside import rotated

    configs = ["r0", "r1", "r2"]
    assert rotated(configs, 0) == ["r0", "r1", "r2"]  # type: ignore[arg-type]
    # 7 pairs measured: the extension's first pair is pair 7, on replica 7 mod 3 = 1.
    assert rotated(configs, 7) == ["r1", "r2", "r0"]  # type: ignore[arg-type]
