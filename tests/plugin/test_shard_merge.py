"""A perf suite split across runners with pytest-split (#17): each shard passes on its own without
taking the other shards' baselined tests for gate loosenings, and ``python -m
pytest_tfserving.report merge`` makes of the shards' JSON reports the unsharded run's report and
one exit status. Real embedded server, real git repository, real pytest-split.

One repository is recorded once per module (baselines and ``.test_durations`` committed on
``main``); the unsharded run and both shards run once per module, judged against ``main``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.report.shard_merge import load_shard_report, merge_reports
from tests.plugin.conftest import CONFTEST

pytest.importorskip("pytest_split", reason="pytest-split is in the [dev] and [shard] extras")

# Short windows: these tests check which tests ran where and what the merge decides, not verdicts.
ARGS = (
    "--perf",
    "--tfserving-backend=embedded",
    "--perf-warmup=0.3",
    "--perf-window=0.2",
    "--perf-min-windows=5",
    "--perf-max-windows=8",
    "-p",
    "no:cacheprovider",
)
INI = "[pytest]\ntfserving_backend = embedded\ntfserving_model_cache = {cache}\n"
# Gated on error_rate only, zero in every run, so every verdict is "pass" in every run: the runs are
# compared verdict by verdict, and latency verdicts of two runs on a busy machine may differ (one
# pass, one inconclusive) whatever the sharding.
MARKER = 'max_error_rate=0, gate=("error_rate",)'
LATENCY = f"""
import pytest

@pytest.mark.perf({MARKER})
@pytest.mark.parametrize("concurrency", [1, 2])
def test_latency(tfserving_server, perf, concurrency):
    perf.measure(tfserving_server, concurrency=concurrency)
"""
NAMED = f"""
import pytest

@pytest.mark.perf({MARKER})
def test_named(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1, name="lat")

@pytest.mark.perf({MARKER}, p99_ms=60000)
def test_other(tfserving_server, perf):
    perf.measure(tfserving_server, concurrency=1)
"""
MEASUREMENTS = {
    "test_latency.py::test_latency[1]",
    "test_latency.py::test_latency[2]",
    "test_named.py::test_named@lat",
    "test_named.py::test_other",
}
MERGE = (sys.executable, "-m", "pytest_tfserving.report", "merge")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True, text=True, check=True,
    )
    return done.stdout


def pytest_run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", *ARGS, *args], cwd=repo, capture_output=True,
                          text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Path:
    """``main`` holds the tests, their baselines and the durations pytest-split splits by."""
    repo = tmp_path_factory.mktemp("recorded")
    (repo / "pytest.ini").write_text(INI.format(cache=shared_model_cache))
    (repo / "conftest.py").write_text(CONFTEST)
    (repo / ".gitignore").write_text("__pycache__/\nreports/\n")
    (repo / "test_latency.py").write_text(LATENCY)
    (repo / "test_named.py").write_text(NAMED)
    done = pytest_run(repo, "--update-baselines", "--store-durations")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert len(list((repo / "baselines").glob("*.json"))) == len(MEASUREMENTS), done.stdout[-3000:]
    assert (repo / ".test_durations").is_file()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baselines and durations")
    return repo


@dataclass(frozen=True)
class Runs:
    repo: Path
    full: subprocess.CompletedProcess[str]
    shards: tuple[subprocess.CompletedProcess[str], ...]

    def report(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.repo / "reports" / name).read_text())
        return data

    def shard_path(self, group: int) -> Path:
        return self.repo / "reports" / f"shard-{group}.json"


def measured(report: dict[str, Any]) -> set[str]:
    return {t["nodeid"] for t in report["tests"] if t["measurement"] is not None}


def outcomes(records: Any) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Per measurement: its outcome and its verdicts, metric by metric."""
    return {r.nodeid: (r.decision.status, tuple(f"{f.verdict.metric}={f.verdict.verdict}"
                                                for f in r.decision.findings)) for r in records}


@pytest.fixture(scope="module")
def runs(recorded: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The suite judged against ``main`` unsharded, then as shard 1 and shard 2 of 2."""
    repo = tmp_path_factory.mktemp("pr")
    shutil.copytree(recorded, repo, dirs_exist_ok=True)
    full = pytest_run(repo, "--baseline-ref=main", "--perf-report-json=reports/full.json",
                      "--perf-report-md=reports/full.md")
    shards = tuple(
        pytest_run(repo, "--baseline-ref=main", "--splits=2", f"--group={group}",
                   f"--perf-report-json=reports/shard-{group}.json")
        for group in (1, 2)
    )
    return Runs(repo, full, shards)


def test_each_shard_passes_without_taking_the_others_tests_for_gate_changes(runs: Runs) -> None:
    assert runs.full.returncode == 0, runs.full.stdout[-3000:]
    full = runs.report("full.json")
    assert measured(full) == MEASUREMENTS
    ran = []
    for group, done in enumerate(runs.shards, 1):
        assert done.returncode == 0, done.stdout[-4000:]
        assert f"[pytest-split] Running group {group}/2" in done.stdout
        assert "the gate is as strict as at main" in done.stdout
        report = runs.report(f"shard-{group}.json")
        ran.append(measured(report))
        assert report["session"]["shard"]["group"] == group
        # The other shard's baselined tests are theirs, not this shard's loosenings.
        assert report["gate_changes"]["not_run"] == []
        assert set(report["gate_changes"]["other_shards"]) == MEASUREMENTS - measured(report)
        # --perf-alpha is shared over the whole suite in every shard, as in the unsharded run.
        assert report["session"]["alpha_tests"] == full["session"]["alpha_tests"] == 4
    assert all(ran) and not ran[0] & ran[1] and ran[0] | ran[1] == MEASUREMENTS


def test_the_merged_report_is_the_unsharded_runs(runs: Runs) -> None:
    out = runs.repo / "merged.md"
    done = subprocess.run([*MERGE, str(runs.shard_path(1)), str(runs.shard_path(2)), "-o", str(out)],
                          capture_output=True, text=True, check=False, env=_no_step_summary())
    assert done.returncode == 0, done.stderr
    assert "performance gate passed over 2 shard reports" in done.stderr
    merged = merge_reports([load_shard_report(runs.shard_path(g)) for g in (1, 2)])
    full = load_shard_report(runs.repo / "reports" / "full.json")
    assert outcomes(merged.records) == outcomes(full.records)
    text, unsharded = out.read_text(), (runs.repo / "reports" / "full.md").read_text()
    assert text.split("\n")[:3] == unsharded.split("\n")[:3] == ["## Performance gate", "", "**4 passed**"]
    for nodeid in ("test_latency.py::test_latency[1]", "test_latency.py::test_latency[2]",
                   "test_named.py::test_named", "test_named.py::test_other"):
        assert f"| `{nodeid}` |" in text and f"| `{nodeid}` |" in unsharded
    assert "**the gate is as strict as at main**" in text


def test_a_missing_shard_fails_the_merge_naming_its_baselined_tests(runs: Runs) -> None:
    out = runs.repo / "partial.md"
    done = subprocess.run([*MERGE, str(runs.shard_path(1)), "-o", str(out)],
                          capture_output=True, text=True, check=False, env=_no_step_summary())
    assert done.returncode == 2, done.stderr
    assert "shard 2/2 has no report among the files given" in done.stderr
    missing = MEASUREMENTS - measured(runs.report("shard-1.json"))
    listed = done.stderr.split("baselined at main and measured in none of these reports:\n")[1]
    assert {line.strip() for line in listed.splitlines() if line.startswith("    ")} == missing
    assert not out.exists()


def test_a_failure_in_one_shard_fails_the_merged_status(
    pytester: pytest.Pytester, recorded: Path, runs: Runs
) -> None:
    """test_other's shard runs again with a ceiling it cannot meet (a tightening, not a loosening)."""
    group = next(g for g in (1, 2) if "test_named.py::test_other" in measured(runs.report(f"shard-{g}.json")))
    shutil.copytree(recorded, pytester.path, dirs_exist_ok=True)
    path = pytester.path / "test_named.py"
    path.write_text(path.read_text().replace("p99_ms=60000", "p99_ms=60000, min_rps=1e9"))
    report = pytester.path / "reports" / f"shard-{group}.json"
    result = pytester.runpytest(*ARGS, "--baseline-ref=main", "--splits=2", f"--group={group}",
                                f"--perf-report-json={report}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED test_named.py::test_other*"])
    other = runs.shard_path(3 - group)
    done = subprocess.run([*MERGE, str(report), str(other)], capture_output=True, text=True, check=False,
                          env=_no_step_summary())
    assert done.returncode == 1, done.stderr
    assert f"shard {group}/2 ({report}): pytest exited with status 1" in done.stderr
    assert "1 perf measurement failed or errored: test_named.py::test_other" in done.stderr
    assert "| `test_named.py::test_other` |" in done.stdout and "❌ ceiling min_rps" in done.stdout


def _no_step_summary() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}


def test_a_shard_under_xdist_reports_as_the_same_shard_without_it(
    pytester: pytest.Pytester, recorded: Path, runs: Runs
) -> None:
    """pytest-xdist workers each split the suite alike; the controller, which collects nothing, takes
    the other shards' tests and the suite's perf tests over from them."""
    shutil.copytree(recorded, pytester.path, dirs_exist_ok=True)
    report = pytester.path / "reports" / "shard-2.json"
    result = pytester.runpytest_subprocess(*ARGS, "-n", "2", "--baseline-ref=main", "--splits=2", "--group=2",
                                           f"--perf-report-json={report}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    data, alone = json.loads(report.read_text()), runs.report("shard-2.json")
    assert measured(data) == measured(alone)
    assert data["gate_changes"]["not_run"] == []
    assert data["gate_changes"]["other_shards"] == alone["gate_changes"]["other_shards"]
    assert data["session"]["alpha_tests"] == 4
