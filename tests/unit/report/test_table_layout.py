"""The terminal section: grouped by test, the verdict coloured, what each verdict could detect, the
PR's worst detectable change at the top and inconclusive results counted with their figure."""

from __future__ import annotations

import io
from dataclasses import replace

from _pytest._io.terminalwriter import TerminalWriter

from pytest_tfserving.gate.outcome import GatePolicy
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.reporter import _marked
from pytest_tfserving.report.terminal import (
    format_table,
    group_records,
    plain,
    reach,
    report_lines,
    status_colour,
    summary_line,
    table_lines,
)
from tests.unit.report.report_factories import MEASUREMENT, judged, metric, relative

TEST_A = "perf/test_models.py::test_variants[grpc]"
TEST_B = "perf/test_models.py::test_other"


def test_a_tests_measurements_and_comparisons_are_one_group_under_its_id() -> None:
    records = [
        judged(f"{TEST_A}@fp32", metric("pass"), metric("pass", metric="rps", change=-0.01)),
        judged(TEST_B, metric("pass")),
        judged(f"{TEST_A}@int8", metric("regression")),
        TestRecord(TEST_A, verdicts=(relative("pass"),)),
    ]
    groups = group_records(records)
    assert [g.test for g in groups] == [TEST_A, TEST_B]
    assert groups[0].status == "failed" and groups[1].status == "passed"
    assert [(r.measurement, r.metric) for r in groups[0].rows] == [
        ("@fp32", "p50_ms"), ("", "rps"), ("@int8", "p50_ms"), ("int8/fp32", "p50_ms"),
    ]  # each measurement named on its first row; a comparison by its pair

    lines = format_table(records, width=100)
    assert sum(TEST_A in line for line in lines) == 1  # the id once, as the group's header
    a, b = (next(i for i, line in enumerate(lines) if line.startswith(t)) for t in (TEST_A, TEST_B))
    assert lines[a].split()[-1] == "failed" and lines[b].split()[-1] == "passed"
    group_a = lines[a + 1 : b]
    assert len(group_a) == 4 and all(line.startswith("  ") for line in group_a)
    assert group_a[0].split()[:2] == ["@fp32", "p50_ms"] and group_a[1].split()[0] == "rps"
    assert group_a[2].split()[:2] == ["@int8", "p50_ms"] and group_a[2].split()[-1] == "regression"
    assert group_a[3].split()[:3] == ["int8/fp32", "p50_ms", "<=0.6x"]


def test_the_detectable_column() -> None:
    records = [
        judged(f"{TEST_A}@fp32", metric("pass", detectable=0.07),
               metric("pass", metric="rps", detectable=None),
               metric("inconclusive", metric="p99_ms", detectable=0.4)),
        judged(f"{TEST_A}@other", metric("incomparable", detectable=None, hardware_baseline="cpu=B"),
               policy=GatePolicy(hardware_mismatch_fails=False)),
        TestRecord(TEST_A, verdicts=(relative("pass", detectable=0.034),)),
    ]
    lines = format_table(records, width=120)
    assert lines[0].split() == ["metric", "baseline", "current", "change", "detects", "verdict"]
    column = lines[0].index("detects") + len("detects")  # right-aligned under its heading

    def cell(metric_name: str) -> str:
        row = next(line for line in lines if f" {metric_name} " in line)
        return row[column - len("detects") - 2 : column].strip()

    assert cell("p50_ms") == ">= 7%"
    assert cell("rps") == "?"  # judged, but not estimated
    assert cell("p99_ms") == ">= 40%"
    assert cell("int8/fp32") == ">= 3.4%"
    incomparable = next(line for line in lines if "incomparable" in line)
    assert incomparable.split()[-2] == "-"  # nothing was compared


def test_the_header_names_the_worst_detectable_change_and_what_could_not_be_estimated() -> None:
    records = [
        judged(f"{TEST_A}@fp32", metric("pass", detectable=0.07),
               metric("pass", metric="rps", detectable=None)),
        judged(f"{TEST_A}@int8", metric("pass", metric="p99_ms", detectable=0.34),
               metric("pass", metric="rps", detectable=0.2)),
        judged(TEST_B, metric("pass", detectable=None)),
        TestRecord(TEST_A, verdicts=(relative("pass", detectable=0.12),)),
    ]
    assert reach(records).line() == (
        f"this run could detect changes of at least 34% (p99_ms of {TEST_A}@int8); "
        "2 verdicts could not be estimated"
    )
    lines = [plain(line) for line in report_lines(records, width=400)]
    assert lines[0] == reach(records).line()  # the section starts with it
    relative_worst = [TestRecord(TEST_A, verdicts=(relative("pass", detectable=0.5),)), *records]
    assert "(p50_ms int8/fp32 of " + TEST_A + ")" in reach(relative_worst).line()


def test_the_header_when_nothing_could_be_estimated_or_compared() -> None:
    none = [judged(TEST_A, metric("pass", detectable=None), metric("pass", metric="rps", detectable=None))]
    assert reach(none).line() == "what this run could detect could not be estimated for any of its 2 verdicts"
    other = [judged(TEST_A, metric("pass", detectable=0.05),
                    metric("incomparable", metric="rps", detectable=None, hardware_baseline="cpu=B"))]
    assert reach(other).line() == (f"this run could detect changes of at least 5% (p50_ms of {TEST_A}); "
                                   "1 not compared (baseline from other hardware or speed)")
    assert reach([TestRecord(TEST_A, MEASUREMENT)]).line().startswith("no verdicts")


def test_inconclusive_is_counted_with_its_figure_and_how_to_make_it_fail() -> None:
    records = [
        judged(f"{TEST_A}@fp32", metric("inconclusive", detectable=0.4)),
        judged(f"{TEST_A}@int8", metric("inconclusive", detectable=0.25), metric("pass", detectable=0.9)),
        judged(TEST_B, metric("regression")),
        judged("perf/t.py::test_ok", metric("pass")),
        TestRecord("perf/t.py::test_new", MEASUREMENT),
    ]
    assert summary_line(records) == (
        "1 failed, 2 inconclusive (could detect >= 40%; not failed: --perf-inconclusive=fail makes them "
        "fail), 1 passed, 1 new (no baseline)"
    )
    strict = [replace(r, policy=GatePolicy(inconclusive_fails=True)) for r in records]
    assert summary_line(strict).startswith(
        "3 failed (2 of them inconclusive under --perf-inconclusive=fail, could detect >= 40%), 1 passed"
    )
    unknown = [judged(TEST_A, metric("inconclusive", detectable=None))]
    assert summary_line(unknown).startswith("1 inconclusive (what they could detect was not estimated;")
    lines = [plain(line) for line in report_lines(records, width=400)]
    assert lines[1] == summary_line(records)
    row = next(line for line in format_table(records, width=120) if line.strip().startswith("@fp32"))
    assert row.split()[-2:] == ["40%", "inconclusive"]  # shown as its own outcome, with its figure


def test_verdicts_are_coloured_by_what_they_mean() -> None:
    assert [status_colour(s) for s in ("regression", "fail", "fail (inconclusive)", "error", "failed",
                                       "ceiling p99_ms")] == ["red"] * 6
    assert [status_colour(s) for s in ("inconclusive", "incomparable")] == ["yellow"] * 2
    assert [status_colour(s) for s in ("pass", "passed", "improvement")] == ["green"] * 3
    assert status_colour("new") is None

    records = [judged(f"{TEST_A}@fp32", metric("regression"), metric("inconclusive", metric="p99_ms")),
               judged(TEST_B, metric("improvement", change=-0.3))]
    lines = table_lines(records, width=120)
    spans = {text.strip(): colour for line in lines for text, colour in line if colour}
    assert spans == {"failed": "red", "regression": "red", "inconclusive": "yellow", "passed": "green",
                     "improvement": "green"}


def test_markup_on_a_tty_and_plain_text_otherwise() -> None:
    records = [judged(f"{TEST_A}@fp32", metric("regression"))]
    row = next(line for line in table_lines(records, width=120) if plain(line).strip().startswith("@fp32"))
    tty = TerminalWriter(io.StringIO())
    tty.hasmarkup = True
    assert _marked(row, tty.markup).endswith("\x1b[31mregression\x1b[0m")
    pipe = TerminalWriter(io.StringIO())
    pipe.hasmarkup = False
    assert _marked(row, pipe.markup) == plain(row)


def test_rows_fit_the_width() -> None:
    records = [
        judged(f"{TEST_A}@fp32", metric("regression"), metric("inconclusive", metric="rps")),
        TestRecord(TEST_A, verdicts=(relative("inconclusive", 0.65),)),  # "fail (inconclusive)"
        TestRecord("perf/test_new.py::test_new", MEASUREMENT),
        TestRecord("perf/test_broken.py::test_x", error="ServerCrashed: exit code 137 " + "x" * 200),
    ]
    for width in (80, 100, 120):
        lines = format_table(records, width=width)
        assert all(len(line) <= width for line in lines), "\n".join(lines)
        assert not any("…" in line for line in lines[2:] if not line.startswith("  error")), "\n".join(lines)


def test_a_loosened_gate_is_a_row_of_its_own() -> None:
    from pytest_tfserving.gate.gate_settings import GateChange

    changes = (GateChange("tolerance p50_ms", "0.1", "0.5", looser=True),
               GateChange("ceiling p99_ms", "9", "5", looser=False))
    record = judged(f"{TEST_A}@fp32", metric("pass"), gate_changes=changes)
    lines = format_table([record], width=120)
    assert lines[2] == f"{TEST_A}  failed"
    row = next(line for line in lines if "tolerance p50_ms" in line)
    assert row.endswith("fail (gate loosened)") and "0.1" in row and "0.5" in row
    assert not any("ceiling p99_ms" in line for line in lines)  # a tighter gate is no row
    allowed = replace(record, policy=GatePolicy(allow_gate_changes=True))
    assert format_table([allowed], width=120)[-1].endswith("gate loosened (allowed)")
