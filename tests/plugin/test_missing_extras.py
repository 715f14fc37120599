"""An option or a selected test whose optional dependency is missing is a usage error at start-up,
naming the extra to install, not a traceback after the measuring (#19).

The pytester project's conftest makes the import fail for real (``sys.modules[name] = None`` makes
``import name`` raise ImportError) before the plugin configures; pytester restores ``sys.modules``
after each inline run.
"""

from __future__ import annotations

import pytest

HIDE = "import sys\nsys.modules[{module!r}] = None\n"
NEVER_RUNS = """
import pytest

def test_must_not_run():
    raise AssertionError("the session must stop before any test runs")
"""
GPU_CEILING = """
import pytest

@pytest.mark.perf(max_gpu_util=90)
def test_gpu_bound():
    raise AssertionError("the session must stop before any test runs")

def test_plain():
    pass
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--tfserving-backend=embedded", *args)


def test_plots_without_matplotlib_is_a_usage_error_at_start(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HIDE.format(module="matplotlib"))
    pytester.makepyfile(test_never=NEVER_RUNS)
    result = run(pytester, "--perf-report-plots=plots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: --perf-report-plots (ini perf_report_plots) needs the 'plots' extra, which is not "
        "installed (*matplotlib*): pip install 'pytest-tfserving[[]plots]'"  # [[] is a literal [
    ])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stdout.no_fnmatch_line("*the session must stop*")
    assert not (pytester.path / "plots").exists()


def test_plots_from_the_ini_file_are_checked_too(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HIDE.format(module="matplotlib"))
    pytester.makeini("[pytest]\nperf_report_plots = plots\n")
    pytester.makepyfile(test_never=NEVER_RUNS)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *needs the 'plots' extra*pip install 'pytest-tfserving[[]plots]'"])


def test_plots_with_matplotlib_installed_start_normally(pytester: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_ok="def test_ok():\n    pass\n")
    run(pytester, "--perf-report-plots=plots").assert_outcomes(passed=1)


def test_gpu_ceiling_without_nvml_is_a_usage_error_when_selected(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HIDE.format(module="pynvml"))
    pytester.makepyfile(test_gpu=GPU_CEILING)
    result = run(pytester, "--perf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: test_gpu.py::test_gpu_bound: a GPU ceiling or gated GPU metric needs the 'gpu' extra, "
        "which is not installed (*pynvml*): pip install 'pytest-tfserving[[]gpu]'"
    ])
    result.stdout.no_fnmatch_line("*the session must stop*")

    # Deselected (a plain run), the GPU test needs nothing: the other tests run.
    run(pytester).assert_outcomes(passed=1, deselected=1)
