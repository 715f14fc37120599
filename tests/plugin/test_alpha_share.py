"""--perf-alpha is one budget for the whole session: each selected perf test gets an equal share."""

from __future__ import annotations

import re

import pytest

TESTS = """
import pytest

@pytest.mark.perf
def test_a(perf):
    print(f"ALPHA a {perf.alpha!r}")

@pytest.mark.perf
@pytest.mark.parametrize("x", [1, 2])
def test_b(perf, x):
    print(f"ALPHA b{x} {perf.alpha!r}")

def test_uses_the_fixture_unmarked(perf):
    print(f"ALPHA c {perf.alpha!r}")

def test_not_perf():
    pass
"""


def shares(result: pytest.RunResult) -> dict[str, float]:
    """What each test printed as its share (the output of passed tests, via -rP)."""
    return {name: float(value) for name, value in re.findall(r"ALPHA (\w+) ([0-9.e-]+)", result.stdout.str())}


def test_each_selected_perf_test_gets_an_equal_share(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shares=TESTS)
    result = pytester.runpytest("-rP", "-p", "no:cacheprovider", "--tfserving-backend=embedded", "--perf")
    result.assert_outcomes(passed=5)
    assert shares(result) == {name: pytest.approx(0.01 / 4) for name in ("a", "b1", "b2", "c")}

    # Deselected tests take no share; --perf-alpha sets the budget.
    result = pytester.runpytest("-rP", "-p", "no:cacheprovider", "--tfserving-backend=embedded", "--perf",
                                "-k", "test_a or test_b", "--perf-alpha=0.03")
    assert shares(result) == {name: pytest.approx(0.01) for name in ("a", "b1", "b2")}  # 0.03 / 3


def test_xdist_workers_agree_on_the_share(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_shares=TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "-rP", "-p", "no:cacheprovider",
                                           "--tfserving-backend=embedded", "--perf")
    result.assert_outcomes(passed=5)
    assert shares(result) == {name: pytest.approx(0.01 / 4) for name in ("a", "b1", "b2", "c")}
