"""Merging pytest-split shards' JSON reports (report/shard_merge.py, the ``merge`` CLI): one Markdown
as an unsharded run renders it, one exit status, and a refusal, naming the file and the fix, for
reports that do not make one suite."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_tfserving.gate.ceilings import Failure
from pytest_tfserving.gate.gate_changes import GateChangesReport, MeasuredChange, across_shards, unmeasured
from pytest_tfserving.gate.gate_settings import GateChange
from pytest_tfserving.gate.outcome import GatePolicy
from pytest_tfserving.report.__main__ import main
from pytest_tfserving.report.json_records import records_from_report
from pytest_tfserving.report.json_report import build_json_report
from pytest_tfserving.report.markdown import render_markdown
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.session_facts import session_facts
from pytest_tfserving.report.shard_merge import (
    CANNOT_MERGE,
    FAILED,
    PASSED,
    ShardReport,
    ShardReportError,
    merge_reports,
    merged_markdown,
    parse_shard_report,
    verdict_line,
)
from pytest_tfserving.shard_split import Shard
from tests.unit.gate.gate_factories import FINGERPRINT
from tests.unit.plugin_core.test_light_install import WITHOUT_TF
from tests.unit.report.report_factories import MEASUREMENT, judged, metric, relative

SETTINGS = SimpleNamespace(perf_alpha=0.01, perf_window=0.5, baseline_ref="main", allow_gate_changes=False)
A = "perf/test_a.py::test_a"
B = "perf/test_b.py::test_b[grpc]"
C = "perf/test_b.py::test_c"


def shard_text(records: list[TestRecord], group: int, *, splits: int = 2, exitstatus: int = 0,
               settings: Any = SETTINGS, gate: GateChangesReport | None = None, alpha_tests: int = 3,
               durations: str = "d1") -> str:
    """A shard's JSON report as the plugin writes it."""
    facts = session_facts(settings, exitstatus=exitstatus, alpha_tests=alpha_tests, records=records,
                          shard=Shard(group, splits, "duration_based_chunks", durations))
    report = build_json_report(records, gate_changes=None if gate is None else gate.to_dict(), session=facts)
    return json.dumps(report, allow_nan=False)


def shard(records: list[TestRecord], group: int, **kwargs: Any) -> ShardReport:
    return parse_shard_report(f"reports/shard-{group}.json", shard_text(records, group, **kwargs))


def test_merged_markdown_is_the_unsharded_rendering_of_all_records() -> None:
    one = [judged(A, metric("pass", detectable=0.07))]
    two = [judged(B, metric("pass", detectable=0.3), metric("pass", metric="rps", detectable=0.05)),
           TestRecord(C, MEASUREMENT)]
    run = merge_reports([shard(one, 1), shard(two, 2)])
    assert run.exit_status == PASSED and not run.problems and not run.failures
    text = merged_markdown(run)
    # The header's worst detectable change is over all shards: 30 % is shard 2's.
    assert text.startswith(render_markdown(one + two))
    assert f"this run could detect changes of at least 30% (p50_ms of {B})" in text
    assert "- shard 1/2: 1 perf test, pytest exit status 0 (`shard-1.json`)" in text
    assert "- shard 2/2: 2 perf tests, pytest exit status 0 (`shard-2.json`)" in text


def test_records_read_back_render_exactly_as_the_session_rendered_them() -> None:
    """Everything the Markdown shows survives the JSON: an infinite detectable change (null in JSON)
    is "none", not "not estimated"; failures and errors keep their kind; policy and gate changes
    still decide the outcome."""
    records = [
        judged(A, metric("pass"), metric("regression", metric="rps", detectable=math.inf)),
        judged(f"{B}@fp32", metric("inconclusive", detectable=None, change=math.inf),
               policy=GatePolicy(inconclusive_fails=True)),
        TestRecord(f"{B}@int8", verdicts=(relative("inconclusive"),)),
        TestRecord(C, error="AssertionError: too slow\nmore", assertion_failed=True),
        TestRecord("perf/t.py::test_crash", error="server exited with status 1"),
        judged("perf/t.py::test_ceiling", metric("pass"),
               ceiling_failures=(Failure("p99_ms", "p99_ms", "max", 1.0, 2.0),),
               gate_changes=(GateChange("tolerance p50_ms", "0.1", "0.2", looser=True),)),
    ]
    report = json.loads(json.dumps(build_json_report(records), allow_nan=False))
    back = records_from_report(report)
    assert render_markdown(back) == render_markdown(records)
    assert [r.decision.status for r in back] == [r.decision.status for r in records]
    assert "could not detect any change in rps of" in render_markdown(back)


def test_a_test_in_two_shards_cannot_be_merged() -> None:
    run = merge_reports([shard([judged(A, metric("pass"))], 1),
                         shard([judged(A, metric("pass")), judged(B, metric("pass"))], 2)])
    assert run.exit_status == CANNOT_MERGE
    assert any(p.startswith(f"{A} is in more than one shard (reports/shard-1.json, reports/shard-2.json)")
               for p in run.problems), run.problems
    with pytest.raises(ValueError, match="cannot be merged"):
        merged_markdown(run)


@pytest.mark.parametrize(("text", "says"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "a JSON list, not a pytest-tfserving report"),
    ('{"schema_version": 1}', "not a pytest-tfserving JSON report"),
    ('{"schema_version": 99, "tests": []}', "report schema 99 is newer"),
    ('{"schema_version": 1, "tests": []}', 'no "session" facts'),
])
def test_a_malformed_report_is_named_with_the_fix(text: str, says: str) -> None:
    with pytest.raises(ShardReportError, match=r"^reports/x\.json: ") as caught:
        parse_shard_report("reports/x.json", text)
    assert says in str(caught.value)


def test_a_malformed_test_entry_names_the_file_and_the_test() -> None:
    data = json.loads(shard_text([judged(A, metric("pass"))], 1))
    del data["tests"][0]["verdicts"][0]["tolerance"]
    pattern = rf"^reports/x\.json: malformed \(test {A}: .*tolerance.*re-run"
    with pytest.raises(ShardReportError, match=pattern):
        parse_shard_report("reports/x.json", json.dumps(data))


def test_shards_on_different_hardware_cannot_be_merged() -> None:
    other = {**FINGERPRINT, "cpu_model": "Other CPU"}
    same = merge_reports([shard([judged(A, metric("pass"), fingerprint=FINGERPRINT)], 1),
                          shard([judged(B, metric("pass"), fingerprint=FINGERPRINT)], 2)])
    assert same.exit_status == PASSED
    run = merge_reports([shard([judged(A, metric("pass"), fingerprint=FINGERPRINT)], 1),
                         shard([judged(B, metric("pass"), fingerprint=other)], 2)])
    assert run.exit_status == CANNOT_MERGE
    [problem] = run.problems
    assert problem.startswith("the shards measured on different hardware")
    assert "cpu=Test CPU" in problem and "cpu=Other CPU" in problem and "one runner class" in problem


def test_shards_with_different_gate_settings_cannot_be_merged() -> None:
    looser = SimpleNamespace(**{**vars(SETTINGS), "perf_alpha": 0.05})
    run = merge_reports([shard([judged(A, metric("pass"))], 1),
                         shard([judged(B, metric("pass"))], 2, settings=looser)])
    assert run.exit_status == CANNOT_MERGE
    assert run.problems == ("the shards were judged with different perf_alpha (reports/shard-1.json: "
                            "0.01, reports/shard-2.json: 0.05); run every shard with the same options "
                            "and ini",)


def test_missing_repeated_or_differently_split_shards_cannot_be_merged() -> None:
    one, two = [judged(A, metric("pass"))], [judged(B, metric("pass"))]
    missing = merge_reports([shard(one, 1, splits=3), shard(two, 2, splits=3)])
    assert missing.exit_status == CANNOT_MERGE
    assert missing.problems[0].startswith("shard 3/3 has no report among the files given")
    repeated = merge_reports([shard(one, 1), parse_shard_report("again.json", shard_text(two, 1))])
    given = "shard 1 is given 2 times: reports/shard-1.json, again.json"
    assert any(p.startswith(given) for p in repeated.problems)
    assert any(p.startswith("shard 2/2 has no report") for p in repeated.problems)
    durations = merge_reports([shard(one, 1), shard(two, 2, durations="d2")])
    assert durations.exit_status == CANNOT_MERGE
    assert "split with different durations files" in durations.problems[0]
    suites = merge_reports([shard(one, 1), shard(two, 2, alpha_tests=4)])
    assert suites.exit_status == CANNOT_MERGE and "split different suites" in suites.problems[0]


@pytest.mark.parametrize(("first", "second", "status"), [
    ((metric("pass"), 0), (metric("pass"), 0), PASSED),
    ((metric("pass"), 0), (metric("regression"), 1), FAILED),
    ((metric("pass"), 0), (metric("pass"), 1), FAILED),  # a non-perf test failed in shard 2
    ((metric("pass"), 0), (metric("pass"), 5), PASSED),  # pytest's "no tests" (an empty shard)
    ((metric("pass"), 2), (metric("pass"), 0), FAILED),  # interrupted
])
def test_one_exit_status_for_the_pull_request(first: Any, second: Any, status: int) -> None:
    (v1, s1), (v2, s2) = first, second
    run = merge_reports([shard([judged(A, v1)], 1, exitstatus=s1), shard([judged(B, v2)], 2, exitstatus=s2)])
    assert run.exit_status == status, run.failures
    if status == FAILED:
        assert "FAILED" in verdict_line(run) and run.failures


def test_an_error_in_a_shard_fails_the_merge() -> None:
    run = merge_reports([shard([judged(A, metric("pass"))], 1),
                         shard([TestRecord(B, error="server exited")], 2, exitstatus=1)])
    assert run.exit_status == FAILED
    assert f"1 perf measurement failed or errored: {B}" in run.failures


# -- the gate changes over the union of the shards -------------------------------------------------
def gate(*, other_shards: tuple[str, ...] = (), not_run: tuple[str, ...] = ()) -> GateChangesReport:
    return GateChangesReport(ref="main", allowed=False, other_shards=other_shards, not_run=not_run)


def test_a_shard_lists_the_other_shards_tests_apart_from_those_it_did_not_run() -> None:
    found = unmeasured([A, f"{B}@fp32", C], collected_files={"perf/test_a.py", "perf/test_b.py"},
                       measured=[A], elsewhere=[B])
    assert found.other_shards == (f"{B}@fp32",)
    assert found.not_run == (C,)


def test_a_test_left_to_other_shards_that_none_measured_fails_unless_allowed() -> None:
    shards = [gate(other_shards=(B, C)), gate(other_shards=(A,))]
    merged = across_shards(shards, allowed=False, measured={A, B})
    assert merged.not_run == (C,) and merged.fails_session and merged.merged_shards == 2
    assert not across_shards(shards, allowed=False, measured={A, B, C}).fails_session
    allowed = across_shards(shards, allowed=True, measured={A, B})
    assert allowed.not_run == (C,) and not allowed.fails_session
    # A test that failed in its shard already fails the run; its missing measurement is not repeated.
    assert not across_shards(shards, allowed=False, measured={A, B}, failed_tests={C}).not_run


def test_the_merge_fails_for_a_baselined_test_no_shard_measured() -> None:
    """Shard 1 left C to the other shards; shard 2 did not measure it (both reports otherwise fine)."""
    one = shard([judged(A, metric("pass"))], 1, gate=gate(other_shards=(B, C)))
    two = shard([judged(B, metric("pass"))], 2, gate=gate(other_shards=(A,)))
    run = merge_reports([one, two])
    assert run.exit_status == FAILED
    assert run.gate is not None and run.gate.not_run == (C,)
    text = merged_markdown(run)
    assert (f"- `{C}`: baselined at main, not measured in any of the 2 shard reports merged "
            "(renamed, re-parametrized, skipped, deselected or its measurement renamed)") in text
    assert "FAILED: 1 loosening of the gate against main" in text
    assert merge_reports([one, two], allow_gate_changes=True).exit_status == PASSED


def test_a_missing_shard_is_named_with_the_baselined_tests_it_would_have_run() -> None:
    run = merge_reports([shard([judged(A, metric("pass"))], 1, gate=gate(other_shards=(B, C)))])
    assert run.exit_status == CANNOT_MERGE
    line = verdict_line(run)
    assert "shard 2/2 has no report among the files given" in line
    assert f"baselined at main and measured in none of these reports:\n    {B}\n    {C}" in line


# -- the command line -----------------------------------------------------------------------------
def write_shards(tmp_path: Path, *texts: str) -> list[str]:
    paths = []
    for n, text in enumerate(texts, 1):
        path = tmp_path / "reports" / f"shard-{n}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        paths.append(str(path))
    return paths


def test_cli_writes_one_markdown_and_appends_the_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    paths = write_shards(tmp_path, shard_text([judged(A, metric("pass"))], 1),
                         shard_text([judged(B, metric("regression"))], 2, exitstatus=1))
    out = tmp_path / "merged.md"
    assert main(["merge", *paths, "-o", str(out)]) == FAILED
    text = out.read_text()
    assert text.startswith("## Performance gate\n\n**1 failed, 1 passed**")
    assert summary.read_text() == "earlier step\n" + text
    err = capsys.readouterr().err
    assert "performance gate FAILED over 2 shard reports" in err and "pytest exited with status 1" in err


def test_cli_refuses_a_malformed_report_and_overwrites_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_shards(tmp_path, shard_text([judged(A, metric("pass"))], 1), "{truncated")
    out = tmp_path / "merged.md"
    out.write_text("the last good report\n")
    assert main(["merge", *paths, "-o", str(out)]) == CANNOT_MERGE
    assert out.read_text() == "the last good report\n"
    err = capsys.readouterr().err
    assert "cannot merge: nothing written" in err and f"{paths[1]}: not JSON" in err
    assert main(["merge", paths[0], str(tmp_path / "absent.json")]) == CANNOT_MERGE
    assert "absent.json: no such file; every shard's --perf-report-json must be downloaded" in (
        capsys.readouterr().err)
    assert main(["merge", *paths[:1], "-o", paths[0]]) == CANNOT_MERGE
    assert "is one of the shard reports" in capsys.readouterr().err


def test_cli_prints_to_stdout_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    paths = write_shards(tmp_path, shard_text([judged(A, metric("pass"))], 1),
                         shard_text([judged(B, metric("pass"))], 2))
    assert main(["merge", *reversed(paths)]) == PASSED
    captured = capsys.readouterr()
    assert captured.out.index("shard 1/2") < captured.out.index("shard 2/2")  # sorted by path
    assert "performance gate passed over 2 shard reports" in captured.err


def test_the_merge_runs_on_the_light_install(tmp_path: Path) -> None:
    """The workflow's final job installs pytest-tfserving without TensorFlow."""
    paths = write_shards(tmp_path, shard_text([judged(A, metric("pass"))], 1),
                         shard_text([judged(B, metric("pass"))], 2))
    code = WITHOUT_TF + (
        "import runpy\nsys.argv = ['merge', 'merge', *sys.argv[1:]]\n"
        "runpy.run_module('pytest_tfserving.report', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True,
                          check=False, timeout=120, env={**os.environ, "GITHUB_STEP_SUMMARY": ""})
    assert done.returncode == PASSED, done.stderr
    assert done.stdout.startswith("## Performance gate\n\n**2 passed**")


WORKFLOWS = (".github/workflows/perf.yml", "pytest_tfserving/scaffold_templates/perf.yml.txt")


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_example_workflow_shards_on_gpu_runners_and_merges(name: str) -> None:
    """Read as text: a matrix of shards on the self-hosted GPU runners, each uploading its report, and
    a final job that merges them whatever the shards' outcome (its exit status is the PR's check)."""
    workflow = (Path(__file__).parents[3] / name).read_text()
    perf, merge = workflow.split("\n  perf:\n", 1)[1].split("\n  merge:\n", 1)
    assert "      matrix:\n        shard: [1, 2]" in perf and "runs-on: [self-hosted, gpu]" in perf
    assert "--splits=${{ strategy.job-total }} --group=${{ matrix.shard }}" in perf
    assert "--perf-report-json=reports/perf.json" in perf and "name: perf-shard-${{ matrix.shard }}" in perf
    assert "github.event.pull_request.head.repo.full_name == github.repository" in perf
    assert "    needs: perf\n    if: always()\n" in merge  # never skipped: a skipped check passes
    assert "pattern: perf-shard-*" in merge
    assert "python -m pytest_tfserving.report merge reports/perf-shard-*/perf.json" in merge
    assert "          ${{ env.PERF_ALLOW_GATE_CHANGES }}\n" in merge
    assert "self-hosted" not in merge.split("runs-on:", 1)[1].splitlines()[0]


def test_a_gate_report_reads_back_from_the_json() -> None:
    report = GateChangesReport(
        ref="main", allowed=True, not_run=(A,), other_shards=(B,), not_gated=(C,), errors=("e",),
        changes=(MeasuredChange(A, GateChange("tolerance p50_ms", "0.1", "0.2", looser=True)),),
        session=(GateChange("--update-baselines", "off", "on", looser=True),),
        unrecorded=("u",), not_collected=("n",),
    )
    assert GateChangesReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
