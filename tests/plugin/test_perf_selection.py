"""Perf tests run only when asked (#19): a plain ``pytest`` in a repository that adopts the plugin
deselects them and says how to run them; ``-m`` naming ``perf``, ``--perf`` or ini
``tfserving_perf = true`` is asking. No test here starts a server, so every run stays short."""

from __future__ import annotations

import pytest

from pytest_tfserving.selection import deselected_line, mentions_perf

TESTS = """
import pytest

@pytest.mark.perf
def test_marked():
    pass

def test_uses_the_perf_fixture(perf):
    pass

@pytest.mark.slow
def test_plain():
    pass
"""
MESSAGE = "2 perf tests deselected: run pytest -m perf"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_sel=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: a slow test\n")
    return pytester.runpytest("-p", "no:cacheprovider", "--tfserving-backend=embedded", "-v", *args)


def test_plain_run_deselects_perf_tests_and_says_how_to_run_them(pytester: pytest.Pytester) -> None:
    result = run(pytester)
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*test_plain PASSED*", MESSAGE, "*1 passed, 2 deselected*"])
    result.stdout.no_fnmatch_line("*test_marked*")


@pytest.mark.parametrize(
    ("args", "passed"),
    [
        # -m matches markers only: a test that uses the perf fixture unmarked needs --perf.
        (("-m", "perf"), 1),
        (("-m", "perf and not slow"), 1),
        (("-m", "perf or slow"), 2),
        (("--perf",), 3),
        (("--perf", "-m", "slow"), 1),  # --perf stops the plugin deselecting, -m still selects
    ],
)
def test_asking_for_perf_runs_them(pytester: pytest.Pytester, args: tuple[str, ...], passed: int) -> None:
    result = run(pytester, *args)
    result.assert_outcomes(passed=passed, deselected=3 - passed)
    result.stdout.no_fnmatch_line("*perf test*deselected: run pytest -m perf*")


def test_ini_opt_in_runs_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sel=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: a slow test\ntfserving_perf = true\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--tfserving-backend=embedded")
    result.assert_outcomes(passed=3)


def test_minus_m_not_perf_is_the_users_decision(pytester: pytest.Pytester) -> None:
    result = run(pytester, "-m", "not perf")
    result.assert_outcomes(passed=2, deselected=1)  # pytest's -m keeps the unmarked fixture user
    result.stdout.no_fnmatch_line("*perf test*deselected: run pytest -m perf*")


def test_only_perf_tests_that_other_filters_kept_are_counted(pytester: pytest.Pytester) -> None:
    """-k and -m deselect first; the line counts only what the plugin itself held back."""
    result = run(pytester, "-k", "plain or marked")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["1 perf test deselected: run pytest -m perf"])
    assert run(pytester, "-m", "slow").stdout.str().count("perf test") == 0


def test_xdist_controller_reports_the_workers_count(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_sel=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: a slow test\n")
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--tfserving-backend=embedded"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([MESSAGE])


@pytest.mark.parametrize(
    ("expression", "mentions"),
    [
        ("perf", True),
        ("not perf", True),
        ("(slow or perf) and not gpu", True),
        ("perf(p99_ms=250)", True),
        ("", False),
        ("slow", False),
        ("perf_smoke", False),
        ("slow(reason='perf')", False),
    ],
)
def test_mentions_perf(expression: str, mentions: bool) -> None:
    assert mentions_perf(expression) is mentions


def test_deselected_line_counts() -> None:
    assert deselected_line(1) == "1 perf test deselected: run pytest -m perf"
    assert deselected_line(3) == "3 perf tests deselected: run pytest -m perf"
