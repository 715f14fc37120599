"""A PR cannot loosen its gate (#18 point 6): under --baseline-ref each loosening in the working tree
fails, named, and passes with --allow-gate-changes. Real embedded server, real git repositories.

One repository is recorded once per module (a subprocess pytest session with --update-baselines,
then committed on ``main``); each case copies it and edits the working tree the way a PR would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugin.conftest import CONFTEST

# Short: these tests check which gate changes are named, not the verdicts. The recording and every
# judged session use the same window settings (they are gate settings too).
ARGS = (
    "--perf",  # a plain run deselects perf tests
    "--tfserving-backend=embedded",
    "--perf-warmup=0.3",
    "--perf-window=0.2",
    "--perf-min-windows=5",
    "--perf-max-windows=8",
    "-p",
    "no:cacheprovider",
)
# perf_alpha: so small that 5-8 windows can never show a regression, so no verdict fails on a busy
# machine and every failure below is the gate change's.
INI = "[pytest]\ntfserving_backend = embedded\ntfserving_model_cache = {cache}\nperf_alpha = 0.000001\n"
MARKER = 'max_error_rate=0, p99_ms=60000, tolerance=0.8, gate=("p50_ms", "rps")'
TEST = f"""
import pytest

@pytest.mark.perf({MARKER})
def test_latency(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)
"""
PARAMETRIZED = f"""
import pytest

@pytest.mark.perf({MARKER})
@pytest.mark.parametrize("concurrency", [1], ids=["one"])
def test_named(tfserving_server, perf, concurrency):
    perf.measure(tfserving_server, concurrency=concurrency, name="latency")
"""
# file -> (text at main, the PR's edit: old, new)
CASES: dict[str, tuple[str, str, str]] = {
    "test_tolerance.py": (TEST, "tolerance=0.8", "tolerance=1.0"),
    "test_gated.py": (TEST, 'gate=("p50_ms", "rps")', 'gate=("p50_ms",)'),
    "test_ceiling.py": (TEST, "max_error_rate=0, p99_ms=60000", "p99_ms=90000"),
    "test_renamed.py": (PARAMETRIZED, "def test_named(", "def test_renamed("),
    "test_reparametrized.py": (PARAMETRIZED, 'ids=["one"]', 'ids=["uno"]'),
    "test_measurement_name.py": (PARAMETRIZED, 'name="latency"', 'name="lat"'),
    "test_skipped.py": (PARAMETRIZED, "def test_named(", "@pytest.mark.skip('slow')\ndef test_named("),
    "test_tightened.py": (TEST, "tolerance=0.8", "tolerance=0.7, min_rps=0.001"),
    # Fewer and shorter windows set in the test body rather than the ini.
    "test_windows.py": (TEST, "concurrency=1)", "concurrency=1, min_windows=3, window_s=0.1)"),
}
TIGHTENED = "test_tightened.py::test_latency"
NOT_RUN = "baselined at main, not measured in this session"
LOOSENED = "gate loosened against --baseline-ref"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True, text=True, check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Path:
    """A repository whose ``main`` holds the tests and their baselines, recorded with gate settings."""
    repo = tmp_path_factory.mktemp("recorded")
    (repo / "pytest.ini").write_text(INI.format(cache=shared_model_cache))
    (repo / "conftest.py").write_text(CONFTEST)
    (repo / ".gitignore").write_text("__pycache__/\n")
    for name, (text, _, _) in CASES.items():
        (repo / name).write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *ARGS, "--update-baselines"],
        cwd=repo, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert len(list((repo / "baselines").glob("*.json"))) == len(CASES), done.stdout[-3000:]
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baselines")
    return repo


@pytest.fixture
def main(pytester: pytest.Pytester, recorded: Path) -> pytest.Pytester:
    """A working tree of ``main``, for a case to edit like a pull request."""
    shutil.copytree(recorded, pytester.path, dirs_exist_ok=True)
    return pytester


def edit(project: pytest.Pytester, name: str, old: str, new: str) -> None:
    path = project.path / name
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


@pytest.fixture
def pr(main: pytest.Pytester) -> pytest.Pytester:
    """Every case's edit applied, plus a new test file."""
    for name, (_, old, new) in CASES.items():
        edit(main, name, old, new)
    main.makepyfile(test_new=TEST)
    return main


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest(*ARGS, *args)


def test_every_loosening_fails_named_and_passes_when_allowed(pr: pytest.Pytester) -> None:
    md, js = pr.path / "perf.md", pr.path / "perf.json"
    result = run(pr, "--baseline-ref=main", f"--perf-report-md={md}", f"--perf-report-json={js}")
    # A loosened marker fails its own test; a baselined measurement that did not run cannot fail a
    # test (its test passed as new, or was skipped), so the session fails.
    result.assert_outcomes(failed=4, passed=5, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random([
        f"*test_tolerance.py::test_latency: {LOOSENED}: tolerance p50_ms: 0.8 -> 1 (looser)",
        f"*test_tolerance.py::test_latency: {LOOSENED}: tolerance rps: 0.8 -> 1 (looser)",
        f"*test_gated.py::test_latency: {LOOSENED}: gated metric rps: gated -> not gated (looser)",
        f"*test_ceiling.py::test_latency: {LOOSENED}: ceiling p99_ms: 60000 -> 90000 (looser)",
        f"*test_ceiling.py::test_latency: {LOOSENED}: ceiling max_error_rate: 0 -> removed (looser)",
        f"*test_windows.py::test_latency: {LOOSENED}: min_windows (as measured): 5 -> 3 (looser)",
        f"*test_windows.py::test_latency: {LOOSENED}: window_s (as measured): 0.2 -> 0.1 (looser)",
        "*--allow-gate-changes*",
        "FAILED test_tolerance.py::test_latency*",
        "FAILED test_gated.py::test_latency*",
        "FAILED test_ceiling.py::test_latency*",
        "FAILED test_windows.py::test_latency*",
    ])
    assert "FAILED test_tightened" not in result.stdout.str()
    result.stdout.fnmatch_lines([
        "*tfserving gate changes (against main)*",
        "FAILED: 11 loosenings of the gate against main; the ref's settings stand*",
        "loosened:",
        "  test_ceiling.py::test_latency: ceiling max_error_rate: 0 -> removed",
        "  test_ceiling.py::test_latency: ceiling p99_ms: 60000 -> 90000",
        "  test_gated.py::test_latency: gated metric rps: gated -> not gated",
        "  test_tolerance.py::test_latency: tolerance p50_ms: 0.8 -> 1",
        "  test_tolerance.py::test_latency: tolerance rps: 0.8 -> 1",
        "  test_windows.py::test_latency: min_windows (as measured): 5 -> 3",
        "  test_windows.py::test_latency: window_s (as measured): 0.2 -> 0.1",
        f"  test_measurement_name.py::test_named[[]one[]]@latency: {NOT_RUN}*",
        f"  test_renamed.py::test_named[[]one[]]@latency: {NOT_RUN}*",
        f"  test_reparametrized.py::test_named[[]one[]]@latency: {NOT_RUN}*",
        f"  test_skipped.py::test_named[[]one[]]@latency: {NOT_RUN}*",
        "tightened (fine):",
        f"  {TIGHTENED}: tolerance p50_ms: 0.8 -> 0.7",
        f"  {TIGHTENED}: tolerance rps: 0.8 -> 0.7",
        f"  {TIGHTENED}: ceiling min_rps: none -> 0.001",
        "not gated: no baseline at main:",
        "  test_measurement_name.py::test_named[[]one[]]@lat",
        "  test_new.py::test_latency",
        "  test_renamed.py::test_renamed[[]one[]]@latency",
        "  test_reparametrized.py::test_named[[]uno[]]@latency",
    ])

    # The report files carry the same section (a PR's summary on GitHub is the Markdown).
    markdown = md.read_text()
    assert "## Gate changes against `main`" in markdown
    assert "test_tolerance.py::test_latency" in markdown.split("## Gate changes", 1)[1]
    report = json.loads(js.read_text())
    assert report["gate_changes"]["ref"] == "main" and report["gate_changes"]["fails_session"]

    allowed = run(pr, "--baseline-ref=main", "--allow-gate-changes")
    allowed.assert_outcomes(passed=9, skipped=1)
    assert allowed.ret == pytest.ExitCode.OK
    allowed.stdout.fnmatch_lines(["11 loosenings of the gate against main, accepted by --allow-gate-changes"])


def test_a_loosened_ini_setting_fails_until_allowed(main: pytest.Pytester) -> None:
    edit(main, "pytest.ini", "perf_alpha = 0.000001\n",
         "perf_alpha = 0.0000001\nperf_run_drift = 0.3\nperf_hardware_mismatch = warn\nab_replicas = 1\n")
    fewer = "--perf-max-windows=6"  # a session's window setting: named once, as the test ran with it
    result = run(main, "test_tightened.py", "--baseline-ref=HEAD", fewer)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random([
        "*gate loosened*perf_run_drift: 0.06 -> 0.3 (looser)",
        "*gate loosened*perf_hardware_mismatch: fail -> warn (looser)",
        "*gate loosened*ab_replicas: 3 -> 1 (looser)",
        "*gate loosened*perf_alpha: 1e-06 -> 1e-07 (looser)",
        "*gate loosened*max_windows (as measured): 8 -> 6 (looser)",
    ])
    assert "perf_max_windows" not in result.stdout.str()
    allowed = run(main, "test_tightened.py", "--baseline-ref=HEAD", fewer, "--allow-gate-changes")
    allowed.assert_outcomes(passed=1)


def test_without_baseline_ref_nothing_applies(pr: pytest.Pytester) -> None:
    result = run(pr, "test_tolerance.py", "test_renamed.py")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    assert "gate changes" not in result.stdout.str()


def test_only_collected_files_count_and_update_baselines_is_a_loosening(main: pytest.Pytester) -> None:
    """Baselines of files this session did not collect are only listed; --update-baselines under a
    ref (regressions do not fail) fails the session."""
    result = run(main, "test_tightened.py", "--baseline-ref=main", "--update-baselines")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "FAILED: 1 loosening of the gate against main*",
        "  --update-baselines: off -> on*",
        "baselined at main in test files this session did not collect:",
        "  test_ceiling.py::test_latency",
    ])


def test_collect_only_checks_nothing(main: pytest.Pytester) -> None:
    """Nothing was measured, so nothing can be missing."""
    result = run(main, "--baseline-ref=main", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert "gate changes" not in result.stdout.str()


def test_a_renamed_test_fails_the_session_under_xdist(main: pytest.Pytester) -> None:
    """The controller collects nothing itself: the workers tell it which files they collected."""
    edit(main, "test_renamed.py", "def test_named(", "def test_renamed(")
    result = main.runpytest_subprocess(
        *ARGS, "-n", "2", "test_renamed.py", "test_tolerance.py", "--baseline-ref=main"
    )
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "FAILED: 1 loosening of the gate against main*",
        f"  test_renamed.py::test_named[[]one[]]@latency: {NOT_RUN}*",
    ])


def test_the_example_workflow_runs_only_this_repositorys_prs_on_its_runners() -> None:
    """The job's condition, read as text: fork PRs never reach the self-hosted runners, the label (or a
    maintainer's dispatch) is the only way to --allow-gate-changes, and no trigger runs PR code with
    the repo's secrets."""
    workflow = (Path(__file__).parents[2] / ".github" / "workflows" / "perf.yml").read_text()
    job = workflow.split("\njobs:\n", 1)[1]
    condition = job.split("    if: >-\n", 1)[1].split("\n    runs-on:", 1)[0]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    assert "github.event_name != 'pull_request' ||" in condition
    assert "pull_request_target:" not in workflow
    label = "contains(github.event.pull_request.labels.*.name, 'perf-gate-change')"
    allowed = f"({label} || inputs.allow_gate_changes) && '--allow-gate-changes' || ''"
    assert f"  PERF_ALLOW_GATE_CHANGES: ${{{{ {allowed} }}}}\n" in workflow
    assert job.count("${{ env.PERF_ALLOW_GATE_CHANGES }}") == 2 and "--allow-gate-changes" not in job
