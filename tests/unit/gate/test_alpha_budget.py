"""How --perf-alpha is spent: the union bound over tests, calls, metrics and looks sums to alpha."""

from __future__ import annotations

import math

import pytest

from pytest_tfserving.gate.alpha_budget import AlphaSpender, SessionAlpha, per_verdict_look
from pytest_tfserving.load.summary import StabilityRule
from pytest_tfserving.perf.settle import Limits


def test_the_shares_of_every_verdict_and_look_sum_to_at_most_the_session_alpha() -> None:
    """Ten tests, calls 1..4 per test, two metrics, each call's looks from perf.measure's limits:
    the levels the judges are given add up to no more than --perf-alpha."""
    session = SessionAlpha(0.01, tests=10)
    looks = Limits.within(StabilityRule(min_windows=6, max_windows=20)).looks()
    total = 0.0
    for calls in (1, 2, 3, 4, 1, 1, 2, 1, 1, 1):
        spender = AlphaSpender(session.per_test())
        for _ in range(calls):
            total += per_verdict_look(spender.next_call(), 2, looks) * 2 * looks
    assert total <= 0.01
    assert total > 0.006  # the first call keeps 61 % of its test's share: little is wasted


def test_the_first_call_keeps_six_over_pi_squared_and_later_calls_less() -> None:
    spender = AlphaSpender(0.01)
    shares = [spender.next_call() for _ in range(50)]
    assert shares[0] == pytest.approx(0.01 * 6 / math.pi**2)
    assert shares[1] == pytest.approx(shares[0] / 4)
    assert sum(shares) < 0.01 and sum(shares) > 0.0098


def test_session_share_per_test_and_bad_alpha() -> None:
    assert SessionAlpha(0.01, tests=4).per_test() == pytest.approx(0.0025)
    assert SessionAlpha(0.01, tests=0).per_test() == 0.01  # nothing collected: never divide by zero
    with pytest.raises(ValueError, match="alpha"):
        SessionAlpha(0.7)


@pytest.mark.parametrize(
    ("limits", "looks"),
    [
        (Limits.within(StabilityRule(min_windows=6, max_windows=20)), 2),  # 6, then 20
        (Limits.within(StabilityRule(min_windows=6, max_windows=6)), 1),
        (Limits.within(StabilityRule(min_windows=6, max_windows=20),
                       first=StabilityRule(min_windows=7, max_windows=7)), 2),  # --ab-baseline: 7, 20
        (Limits.in_rounds(6, 18), 2),  # perf.compare: 6, then 18
        (Limits(StabilityRule(min_windows=6, max_windows=6), 20, lambda measured: 3), 6),  # 6 9 .. 18 20
    ],
)
def test_looks_count_every_judgement_the_settle_loop_can_make(limits: Limits, looks: int) -> None:
    assert limits.looks() == looks
