"""The ``perf`` marker as users write it: validated at collection, selected with ``-m perf``.

No test here starts a server: perf tests that never ask for one are enough to check collection,
selection and the keyword check, so every run stays inline and under a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project's CI runs 3.11
    import tomli as tomllib

OUR_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

SELECTION = """
import pytest

@pytest.mark.perf(p50_ms=1000, tolerance=0.2, tolerances={"p99_ms": 0.5}, gate=("p50_ms",))
def test_perf_marked():
    pass

@pytest.mark.perf
class TestPerfClass:
    def test_in_perf_class(self):
        pass

def test_plain():
    pass
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--tfserving-backend=embedded", *args)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "perf(p99_msec=1)",
            "*test_bad.py::test_bad: @pytest.mark.perf: perf marker: unknown argument 'p99_msec'; "
            "valid: *max_error_rate*min_rps*p50_ms*p99_ms*tolerance*",
        ),
        ("perf(250)", "*test_bad.py::test_bad: @pytest.mark.perf takes keyword arguments only, got (250,)*"),
        ("perf(p99_ms='fast')", "*test_bad.py::test_bad: *p99_ms='fast' must be a number*"),
        ("perf(p99_ms=-1)", "*p99_ms=-1 must be a non-negative finite number*"),
        ("perf(tolerance=10)", "*tolerance=10 must be at most 1*"),
        ("perf(max_error_rate=5)", "*max_error_rate=5 must be at most 1*"),
        ("perf(gate='p50_ms')", "*gate='p50_ms' must be a tuple of metric names*"),
        ("perf(tolerances={'p99': 0.1})", "*tolerances names unknown metric 'p99'; valid metrics: *p99_ms*"),
    ],
)
def test_bad_marker_is_a_usage_error_at_collection(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.{marker}
        def test_bad():
            raise AssertionError("collection must stop before any test runs")

        def test_other():
            pass
        """
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: " + message])
    result.stdout.no_fnmatch_line("*collection must stop*")


def test_bad_marker_on_a_class_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_cls="""
        import pytest

        @pytest.mark.perf(p99_msec=1)
        class TestSlow:
            def test_one(self):
                pass
        """
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: test_cls.py::TestSlow::test_one: *unknown argument 'p99_msec'*"])


def test_minus_m_perf_selects_only_perf_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sel=SELECTION)
    result = run(pytester, "-m", "perf", "--strict-markers", "-v")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines_random(["*test_perf_marked PASSED*", "*test_in_perf_class PASSED*"])
    result.stdout.no_fnmatch_line("*test_plain*")


def test_our_addopts_keep_perf_tests_out_of_a_plain_run(pytester: pytest.Pytester) -> None:
    addopts = tomllib.loads(OUR_PYPROJECT.read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert "not perf" in addopts, "the project's own addopts should keep perf tests out of `pytest`"
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\naddopts = {addopts!r}\n")
    pytester.makepyfile(test_sel=SELECTION)

    plain = run(pytester, "-v")
    plain.assert_outcomes(passed=1, deselected=2)
    plain.stdout.fnmatch_lines(["*test_plain PASSED*"])

    # A later -m wins over the one in addopts: `pytest -m perf` runs exactly the perf tests.
    perf = run(pytester, "-v", "-m", "perf")
    perf.assert_outcomes(passed=2, deselected=1)
    perf.stdout.no_fnmatch_line("*test_plain*")


def test_bad_marker_is_caught_even_when_perf_tests_are_deselected(pytester: pytest.Pytester) -> None:
    """A typo in a ceiling must not hide until the nightly perf job: the plain run reports it too."""
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.perf(p99_msec=1)
        def test_bad():
            pass

        def test_plain():
            pass
        """
    )
    result = run(pytester, "-m", "not perf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *unknown argument 'p99_msec'*"])
