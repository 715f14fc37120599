"""Which gate changes loosen the gate (#18 point 6): the record, the comparison, the session's report,
and how a loosening enters a test's outcome and the reports."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_tfserving.gate.ceilings import parse_perf_marker
from pytest_tfserving.gate.gate_changes import (
    GateChangesReport,
    MeasuredChange,
    session_loosenings,
    unmeasured,
)
from pytest_tfserving.gate.gate_settings import (
    GateChange,
    GateSettings,
    compare_gates,
    gate_settings_of,
)
from pytest_tfserving.gate.outcome import GatePolicy, decide
from pytest_tfserving.report.gate_changes import markdown_section, report_from_records, terminal_lines
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.terminal import record_table_rows as record_rows
from tests.unit.gate.gate_factories import MakeMeasurement

SETTINGS = {
    "perf_alpha": 0.01,
    "perf_run_drift": 0.06,
    "perf_min_windows": 6,
    "perf_max_windows": 20,
    "perf_window": 1.0,
    "perf_hardware_mismatch": "fail",
    "perf_inconclusive": "warn",
    "perf_tolerance": 0.1,
    "ab_replicas": 3,
    "perf_speed_mismatch": 1.4,
}
REF = GateSettings(
    metrics=("p50_ms", "rps"),
    tolerances={"p50_ms": 0.1, "rps": 0.1},
    ceilings={"p99_ms": 250.0, "min_rps": 50.0},
    settings=SETTINGS,
)

LOOSER = GateChange("tolerance p50_ms", "0.1", "0.2", looser=True)
TIGHTER = GateChange("ceiling p99_ms", "250", "200", looser=False)


def lines(ref: GateSettings, now: GateSettings) -> list[str]:
    return [c.line() for c in compare_gates(ref, now)]


def test_identical_settings_are_no_change() -> None:
    assert compare_gates(REF, replace(REF)) == ()
    assert compare_gates(REF, GateSettings.from_dict(REF.to_dict())) == ()


def test_record_of_a_marker_and_the_session() -> None:
    checks = parse_perf_marker({
        "p99_ms": 250, "min_rps": 50, "tolerance": 0.2, "tolerances": {"rps": 0.3}, "gate": ("p50_ms", "rps"),
    })
    settings = SimpleNamespace(**SETTINGS, update_baselines=False, baseline_ref="main")
    record = gate_settings_of(checks, settings)
    assert record.metrics == ("p50_ms", "rps")
    assert record.tolerances == {"p50_ms": 0.2, "rps": 0.3}
    assert record.ceilings == {"p99_ms": 250.0, "min_rps": 50.0}
    assert record.settings == SETTINGS  # nothing else of the session is recorded
    # Only gated metrics carry a tolerance: an ungated one cannot loosen anything.
    assert gate_settings_of(parse_perf_marker({"gate": ("p99_ms",)}), settings).tolerances == {"p99_ms": 0.1}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"tolerances": {"p50_ms": 0.2, "rps": 0.1}}, ["tolerance p50_ms: 0.1 -> 0.2 (looser)"]),
        ({"tolerances": {"p50_ms": 0.05, "rps": 0.1}}, ["tolerance p50_ms: 0.1 -> 0.05 (tighter)"]),
        ({"metrics": ("p50_ms",), "tolerances": {"p50_ms": 0.1}},
         ["gated metric rps: gated -> not gated (looser)"]),
        ({"metrics": ("p50_ms", "rps", "p99_ms"), "tolerances": {"p50_ms": 0.1, "rps": 0.1, "p99_ms": 0.5}},
         ["gated metric p99_ms: not gated -> gated (tighter)"]),
        ({"ceilings": {"p99_ms": 300.0, "min_rps": 50.0}}, ["ceiling p99_ms: 250 -> 300 (looser)"]),
        ({"ceilings": {"p99_ms": 200.0, "min_rps": 50.0}}, ["ceiling p99_ms: 250 -> 200 (tighter)"]),
        # A minimum loosens downwards.
        ({"ceilings": {"p99_ms": 250.0, "min_rps": 40.0}}, ["ceiling min_rps: 50 -> 40 (looser)"]),
        ({"ceilings": {"p99_ms": 250.0, "min_rps": 60.0}}, ["ceiling min_rps: 50 -> 60 (tighter)"]),
        ({"ceilings": {"min_rps": 50.0}}, ["ceiling p99_ms: 250 -> removed (looser)"]),
        ({"ceilings": {"p99_ms": 250.0, "min_rps": 50.0, "max_error_rate": 0.0}},
         ["ceiling max_error_rate: none -> 0 (tighter)"]),
    ],
    ids=["tolerance-up", "tolerance-down", "metric-dropped", "metric-added", "max-up", "max-down",
         "min-down", "min-up", "ceiling-removed", "ceiling-added"],
)
def test_marker_changes(change: dict[str, Any], expected: list[str]) -> None:
    assert lines(REF, replace(REF, **change)) == expected


@pytest.mark.parametrize(
    ("name", "value", "looser"),
    [
        ("perf_alpha", 0.001, True),  # stronger evidence needed: more regressions stay inconclusive
        ("perf_alpha", 0.05, False),
        ("perf_run_drift", 0.2, True),
        ("perf_run_drift", 0.0, False),
        ("perf_max_windows", 10, True),
        ("perf_min_windows", 3, True),
        ("perf_window", 0.5, True),
        ("perf_window", 2.0, False),
        ("ab_replicas", 1, True),  # the process offset is averaged over fewer processes
        ("ab_replicas", 4, False),
        ("perf_speed_mismatch", 3.0, True),  # a baseline from a runner at another speed is judged
        ("perf_speed_mismatch", 1.2, False),
        ("perf_hardware_mismatch", "warn", True),
        ("perf_inconclusive", "fail", False),
        ("perf_inconclusive", "something-new", True),  # unknown counts as loosest
    ],
)
def test_session_setting_changes(name: str, value: Any, looser: bool) -> None:
    [change] = compare_gates(REF, replace(REF, settings={**SETTINGS, name: value}))
    shown = value if isinstance(value, str) else f"{value:g}"
    assert (change.what, change.new, change.looser) == (name, shown, looser)


def test_perf_tolerance_counts_through_the_tolerances_only() -> None:
    """A raised default tolerance loosens the tests that use it (named per metric), not the ones
    that set their own."""
    now = replace(REF, settings={**SETTINGS, "perf_tolerance": 0.3})
    assert compare_gates(REF, now) == ()


def test_settings_recorded_by_only_one_side_are_not_compared() -> None:
    older = replace(REF, settings={k: v for k, v in SETTINGS.items() if k != "perf_alpha"})
    assert compare_gates(older, replace(REF, settings={**SETTINGS, "perf_alpha": 0.0001})) == ()


WINDOWS = {"min_windows": 6.0, "max_windows": 20.0, "window_s": 1.0}
MEASURED = replace(REF, windows=WINDOWS)  # perf.measure without window arguments: the session's


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        ({"min_windows": 3}, ["min_windows (as measured): 6 -> 3 (looser)"]),
        ({"max_windows": 8}, ["max_windows (as measured): 20 -> 8 (looser)"]),
        ({"window_s": 0.1}, ["window_s (as measured): 1 -> 0.1 (looser)"]),
        ({"window_s": 2.0, "max_windows": 30}, ["max_windows (as measured): 20 -> 30 (tighter)",
                                                "window_s (as measured): 1 -> 2 (tighter)"]),
    ],
)
def test_window_settings_in_the_test_body_are_compared(windows: dict[str, float],
                                                       expected: list[str]) -> None:
    """perf.measure(min_windows=3, window_s=0.1) in the PR's test body, the ini untouched."""
    assert lines(MEASURED, replace(MEASURED, windows={**WINDOWS, **windows})) == expected


def test_an_ini_window_change_is_named_once_and_only_where_it_applies() -> None:
    ini = {**SETTINGS, "perf_min_windows": 3, "perf_window": 0.5}
    # Not overridden in the body: the effective values change, named once each.
    follows = replace(MEASURED, settings=ini, windows={**WINDOWS, "min_windows": 3, "window_s": 0.5})
    assert lines(MEASURED, follows) == ["min_windows (as measured): 6 -> 3 (looser)",
                                        "window_s (as measured): 1 -> 0.5 (looser)"]
    # Overridden in the body at the ref and now: this measurement ran as before.
    body = {"min_windows": 10.0, "max_windows": 20.0, "window_s": 2.0}
    assert compare_gates(replace(REF, windows=body), replace(REF, settings=ini, windows=body)) == ()
    # A ref recorded before the windows were (or a perf.record measurement): the ini values compare.
    assert lines(REF, follows) == ["perf_min_windows: 6 -> 3 (looser)", "perf_window: 1 -> 0.5 (looser)"]


def test_single_request_rounds_are_compared() -> None:
    ref = replace(REF, windows={"min_windows": 6.0, "max_windows": 6.0, "rounds": 100.0})
    assert lines(ref, replace(ref, windows={**ref.windows, "rounds": 10.0})) == [
        "rounds (as measured): 100 -> 10 (looser)"]


def test_the_windows_are_recorded_and_read_back() -> None:
    settings = SimpleNamespace(**SETTINGS)
    ran_with = {"min_windows": 3, "window_s": 0.1, "not_a_window_setting": 1}
    record = gate_settings_of(parse_perf_marker({}), settings, ran_with)
    assert record.windows == {"min_windows": 3.0, "window_s": 0.1}
    assert record.to_dict()["windows"] == {"min_windows": 3.0, "window_s": 0.1}
    assert GateSettings.from_dict(record.to_dict()) == record
    assert "windows" not in gate_settings_of(parse_perf_marker({}), settings).to_dict()  # as before


def test_from_dict_ignores_unknown_keys_and_rejects_bad_values() -> None:
    data = {**REF.to_dict(), "from_a_newer_plugin": 1}
    assert GateSettings.from_dict(data) == REF
    with pytest.raises(TypeError):
        GateSettings.from_dict({**REF.to_dict(), "settings": {"perf_alpha": [1]}})


def test_unmeasured_baselines_split_by_collected_files() -> None:
    at_ref = ["a.py::t1", "a.py::t2@lat", "a.py::t3", "a.py::t4[x]", "b.py::t1"]
    found = unmeasured(
        at_ref, collected_files={"a.py"}, measured={"a.py::t1"}, failed_tests={"a.py::t3"}
    )
    assert found.not_run == ("a.py::t2@lat", "a.py::t4[x]")  # t3 failed: already red
    assert found.not_collected == ("b.py::t1",)
    named = unmeasured(["a.py::t@lat"], collected_files={"a.py"}, measured=(), failed_tests={"a.py::t"})
    assert named.not_run == ()
    # "a.py::t" failing says nothing about "a.py::t2"
    other = unmeasured(["a.py::t2"], collected_files={"a.py"}, measured=(), failed_tests={"a.py::t"})
    assert other.not_run == ("a.py::t2",)


def test_session_fails_for_what_no_test_can_fail_for() -> None:
    base = GateChangesReport(ref="main", allowed=False)
    assert not base.fails_session
    assert replace(base, not_run=("a.py::t",)).fails_session
    assert not replace(base, not_run=("a.py::t",), allowed=True).fails_session
    assert replace(base, session=session_loosenings(update_baselines=True)).fails_session
    assert session_loosenings(update_baselines=False) == ()
    assert replace(base, errors=("git failed",), allowed=True).fails_session  # unchecked is never allowed
    # Per-measurement loosenings failed their own tests; the session adds nothing for them.
    assert not replace(base, changes=(MeasuredChange("a.py::t", LOOSER),), not_gated=("x",)).fails_session



def test_a_loosening_fails_the_decision_unless_allowed() -> None:
    failed = decide(gate_changes=(LOOSER, TIGHTER), has_baseline=True)
    assert failed.status == "failed" and failed.failed
    assert "gate loosened against --baseline-ref: tolerance p50_ms: 0.1 -> 0.2 (looser)" in failed.lines
    assert any("--allow-gate-changes" in line for line in failed.lines)
    assert not any("ceiling p99_ms" in line for line in failed.lines)  # tightening is not a failure
    allowed = decide(gate_changes=(LOOSER,), has_baseline=True, policy=GatePolicy(allow_gate_changes=True))
    assert allowed.status == "passed" and allowed.lines == ()
    assert decide(gate_changes=(TIGHTER,), has_baseline=True).status == "passed"
    settings = SimpleNamespace(update_baselines=False, perf_hardware_mismatch="fail", allow_gate_changes=True)
    assert GatePolicy.from_settings(settings).allow_gate_changes


def test_a_loosening_is_a_row_of_the_tables(make_measurement: MakeMeasurement) -> None:
    record = TestRecord("t.py::t", make_measurement([1.0] * 5), gate_changes=(LOOSER, TIGHTER))
    rows = [row for row in record_rows(record) if row.metric == "tolerance p50_ms"]
    assert [(r.baseline, r.current, r.verdict) for r in rows] == [("0.1", "0.2", "fail (gate loosened)")]
    assert record.outcome == "failed"
    allowed = replace(record, policy=GatePolicy(allow_gate_changes=True))
    assert [r.verdict for r in record_rows(allowed) if r.metric == "tolerance p50_ms"] == [
        "gate loosened (allowed)"
    ]
    assert not any(r.metric == "ceiling p99_ms" for r in record_rows(record))


def test_report_from_records_and_its_sections(make_measurement: MakeMeasurement) -> None:
    from pytest_tfserving.gate.baselines import Baseline

    m = make_measurement([1.0] * 5)
    gated = Baseline("a.py::t1", m, {}, "", gate_settings=REF)
    unrecorded = Baseline("a.py::t2", m, {}, "")
    records = [
        TestRecord("a.py::t1", m, gated, gate_changes=(LOOSER, TIGHTER)),
        TestRecord("a.py::t2", m, unrecorded),
        TestRecord("a.py::new", m, None),
        TestRecord("a.py::broken", error="RuntimeError: boom"),
    ]
    report = report_from_records(
        records, ref="origin/main", allowed=False,
        at_ref=["a.py::t1", "a.py::t2", "a.py::renamed", "a.py::broken@lat", "b.py::t"],
        collected_files={"a.py"},
    )
    assert [c.change for c in report.loosened] == [LOOSER]
    assert [c.change for c in report.tightened] == [TIGHTER]
    assert report.not_run == ("a.py::renamed",)
    assert report.not_collected == ("b.py::t",)
    assert report.not_gated == ("a.py::new",)
    assert report.unrecorded == ("a.py::t2",)
    assert report.loosenings == 2 and report.fails_session
    assert report.to_dict()["not_run"] == ["a.py::renamed"]

    text = [(line, red) for line, red in terminal_lines(report)]
    assert text[0] == ("FAILED: 2 loosenings of the gate against origin/main; the ref's settings stand "
                       "(a maintainer's run accepts them with --allow-gate-changes)", True)
    assert ("  a.py::t1: tolerance p50_ms: 0.1 -> 0.2", True) in text
    assert ("  a.py::t1: ceiling p99_ms: 250 -> 200", False) in text
    assert any(line.startswith("  a.py::renamed: baselined at origin/main, not measured") for line, _ in text)
    headings = [line for line, _ in text if not line.startswith(" ")][1:]
    assert headings == [
        "loosened:",
        "tightened (fine):",
        "not gated: no baseline at origin/main:",
        "not compared: the baseline at origin/main records no gate settings:",
        "baselined at origin/main in test files this session did not collect:",
    ]

    md = markdown_section(report)
    assert md.startswith("## Gate changes against `origin/main`\n\n**❌ FAILED: 2 loosenings")
    assert "- `a.py::t1`: tolerance p50_ms: 0.1 -> 0.2" in md
    assert "- `a.py::renamed`: baselined at origin/main, not measured" in md

    accepted = replace(report, allowed=True)
    assert terminal_lines(accepted)[0] == (
        "2 loosenings of the gate against origin/main, accepted by --allow-gate-changes", False
    )
    assert "**⚠️ 2 loosenings" in markdown_section(accepted)
    clean = GateChangesReport(ref="main", allowed=False)
    assert terminal_lines(clean) == [("the gate is as strict as at main", False)]
