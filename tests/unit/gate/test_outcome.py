"""The one pass/fail rule (gate/outcome.py): what fails the test is what every report shows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.ceilings import check_ceilings, parse_perf_marker
from pytest_tfserving.gate.judge import judge
from pytest_tfserving.gate.outcome import (
    DEFAULT_POLICY,
    NOT_SHOWN_BEYOND,
    NOT_SHOWN_WITHIN,
    Decision,
    GatePolicy,
    decide,
    gate_result,
    relative_fails,
    verdict_fails,
)
from pytest_tfserving.gate.verdicts import MetricVerdict, RelativeVerdict
from pytest_tfserving.report.json_report import build_json_report
from pytest_tfserving.report.markdown import render_markdown
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.terminal import format_details, format_table
from tests.unit.gate.gate_factories import FINGERPRINT, MakeMeasurement, lognormal_p50s

NODEID = "perf/test_int8.py::test_int8_faster"
UPDATING = GatePolicy(update_baselines=True)
LENIENT_HARDWARE = GatePolicy(hardware_mismatch_fails=False)
STRICT_INCONCLUSIVE = GatePolicy(inconclusive_fails=True)


def relative(verdict: str, ratio: float | None, **kwargs: Any) -> RelativeVerdict:
    fields: dict[str, Any] = dict(
        metric="p50_ms", verdict=verdict, ratio=ratio, ci_low=None if ratio is None else ratio * 0.85,
        ci_high=None if ratio is None else ratio * 1.15, max_ratio=0.6, min_ratio=None, n_pairs=18,
        confidence=0.99, label_a="int8", label_b="fp32", reason="the confidence interval straddles the bound",
        more_windows_help=verdict == "inconclusive",
    )
    fields.update(kwargs)
    return RelativeVerdict(**fields)


def metric(verdict: str, **kwargs: Any) -> MetricVerdict:
    fields: dict[str, Any] = dict(
        metric="p50_ms", verdict=verdict, baseline=2.0, current=2.6, change=0.3, ci_low=0.25, ci_high=0.35,
        p_value=0.001, tolerance=0.1, confidence=0.98, n_baseline=10, n_current=10,
        hardware_baseline="cpu=A", hardware_current="cpu=A", reason="worse beyond tolerance",
    )
    fields.update(kwargs)
    return MetricVerdict(**fields)


# Still inconclusive after the extra rounds, its point estimate (0.65x) beyond the bound (<= 0.6x).
UNSETTLED_BEYOND = relative("inconclusive", 0.65)


def test_a_comparison_fails_when_broken_with_confidence_and_unsettled_ones_only_when_asked() -> None:
    """An unsettled comparison is its own outcome, whichever side its point estimate lies on:
    failing it on the estimate would fail a claim that holds with no margin half the time."""
    assert relative_fails(relative("fail", 0.9))
    for unsettled in (UNSETTLED_BEYOND, relative("inconclusive", 1.5, max_ratio=None, min_ratio=2.0),
                      relative("inconclusive", 0.55), relative("inconclusive", None)):
        assert not relative_fails(unsettled) and not verdict_fails(unsettled)
        assert verdict_fails(unsettled, STRICT_INCONCLUSIVE)
    assert not relative_fails(relative("pass", 0.3))
    assert not verdict_fails(relative("pass", 0.3), STRICT_INCONCLUSIVE)


def test_a_regression_fails_unless_baselines_are_being_recorded() -> None:
    assert verdict_fails(metric("regression"))
    assert not verdict_fails(metric("regression"), UPDATING)
    assert not verdict_fails(metric("improvement")) and not verdict_fails(metric("inconclusive"))
    assert verdict_fails(relative("fail", 0.9), UPDATING)  # an in-run claim holds while updating too


def test_other_hardware_fails_unless_told_to_warn() -> None:
    other = metric("incomparable", hardware_baseline="cpu=B")
    assert verdict_fails(other)
    assert not verdict_fails(other, LENIENT_HARDWARE)
    assert not verdict_fails(other, replace(DEFAULT_POLICY, update_baselines=True))


def test_inconclusive_fails_only_when_asked() -> None:
    assert not verdict_fails(metric("inconclusive"))
    assert verdict_fails(metric("inconclusive"), STRICT_INCONCLUSIVE)
    assert verdict_fails(relative("inconclusive", 0.55, max_ratio=0.6), STRICT_INCONCLUSIVE)
    assert not verdict_fails(relative("inconclusive", 0.55, max_ratio=0.6))
    assert not verdict_fails(metric("pass"), STRICT_INCONCLUSIVE)


def test_policy_from_settings() -> None:
    settings = SimpleNamespace(update_baselines=True, perf_hardware_mismatch="fail",
                               perf_inconclusive="warn")
    assert GatePolicy.from_settings(settings) == GatePolicy(True, True, False)
    settings = SimpleNamespace(update_baselines=False, perf_hardware_mismatch="warn",
                               perf_inconclusive="fail")
    assert GatePolicy.from_settings(settings) == GatePolicy(False, False, True)
    settings = SimpleNamespace(update_baselines=False, perf_hardware_mismatch="fail",
                               perf_inconclusive="warn")
    assert GatePolicy.from_settings(settings) == GatePolicy()


def test_status_order_and_lines(make_measurement: MakeMeasurement) -> None:
    ceiling = check_ceilings(parse_perf_marker({"p50_ms": 1.0}), make_measurement([2.0] * 5))
    assert decide(error="ServerCrashed: 137").status == "error"
    assert decide(error="AssertionError: x", assertion_failed=True).status == "failed"
    assert decide([metric("inconclusive")], ceiling, has_baseline=True).status == "failed"
    lenient = LENIENT_HARDWARE
    unsettled = decide([metric("inconclusive"), metric("incomparable")], has_baseline=True, policy=lenient)
    assert unsettled.status == "inconclusive"
    assert decide([metric("incomparable")], has_baseline=True, policy=lenient).status == "incomparable"
    assert decide([metric("incomparable")], has_baseline=True).status == "failed"
    assert decide([metric("inconclusive")], has_baseline=True, policy=STRICT_INCONCLUSIVE).status == "failed"
    assert decide([metric("regression")], has_baseline=True, policy=UPDATING).status == "passed"
    assert decide().status == "new"
    assert decide([relative("pass", 0.3)]).status == "passed"
    assert decide([relative("inconclusive", 0.55)]).status == "inconclusive"
    decision = decide([metric("improvement"), metric("regression")], ceiling, has_baseline=True,
                      notes=("judged against main",))
    assert decision.lines[0] == "judged against main"
    assert decision.lines[1] == "ceiling broken: p50_ms 2 > p50_ms=1"
    assert decision.lines[2].startswith("p50_ms: regression - worse beyond tolerance")
    assert len(decision.lines) == 3  # an improvement is no news to the test
    other = {**FINGERPRINT, "cpu_model": "Other CPU"}
    incomparable = decide([metric("incomparable"), metric("incomparable", metric="rps")], has_baseline=True,
                          baseline_fingerprint=FINGERPRINT, fingerprint=other)
    [line] = incomparable.lines  # one line for the record, not one per metric
    assert line.startswith("baseline not comparable, not judged: ") and "`make baselines`" in line


def test_gate_result_prefixes_each_records_lines() -> None:
    within = decide([relative("inconclusive", 0.55)])
    result = gate_result(["a note"], [(NODEID, within)])
    assert not result.failed
    message = relative("inconclusive", 0.55).message()
    assert result.lines == ("a note", f"{NODEID}: {message}{NOT_SHOWN_WITHIN}")
    failed = gate_result([], [("x@a", within), ("x", Decision("failed", (), ("why",)))])
    assert failed.failed
    assert failed.failure_text() == f"performance gate:\nx@a: {within.lines[0]}\nx: why"


def test_an_unsettled_comparison_beyond_its_bound_is_shown_as_inconclusive_not_failed() -> None:
    record = TestRecord(NODEID, verdicts=(UNSETTLED_BEYOND,))
    test = gate_result([], [(record.nodeid, record.decision)])
    assert not test.failed and record.outcome == "inconclusive"
    assert test.lines == (f"{NODEID}: {UNSETTLED_BEYOND.message()}{NOT_SHOWN_BEYOND}",)
    assert "claim not shown (point estimate beyond the bound" in test.lines[0]


def test_reports_show_what_the_test_got_for_an_unsettled_comparison_beyond_its_bound(tmp_path: Path) -> None:
    """Under --perf-inconclusive=fail the test fails, and the table, Markdown and JSON say so."""
    record = TestRecord(NODEID, verdicts=(UNSETTLED_BEYOND,), policy=STRICT_INCONCLUSIVE)
    test = gate_result([], [(record.nodeid, record.decision)])
    assert test.failed
    assert test.lines == (f"{NODEID}: {UNSETTLED_BEYOND.message()}{NOT_SHOWN_BEYOND}",)
    assert "claim not shown (point estimate beyond the bound" in test.failure_text()

    assert record.outcome == "failed"
    lines = format_table([record], width=160)
    assert lines[2] == f"{NODEID}  failed" and lines[3].split()[-2:] == ["fail", "(inconclusive)"]
    assert format_details([record]) == [test.lines[0]]
    markdown = render_markdown([record])
    assert "**1 failed (1 of them inconclusive under --perf-inconclusive=fail" in markdown
    assert "| ❌ fail (inconclusive) |" in markdown
    assert f"<code>{NODEID}</code>: failed" in markdown and NOT_SHOWN_BEYOND.strip() in markdown
    report = build_json_report([record])
    assert report["summary"] == {"failed": 1}
    [entry] = report["tests"]
    assert entry["outcome"] == "failed"
    assert entry["verdicts"][0]["verdict"] == "inconclusive" and entry["verdicts"][0]["fails"] is True
    assert entry["verdicts"][0]["message"].endswith(NOT_SHOWN_BEYOND)
    json.dumps(report, allow_nan=False)


def test_reports_follow_the_policy_the_test_was_judged_under(make_measurement: MakeMeasurement) -> None:
    base_m = make_measurement(lognormal_p50s(0, cv=0.01))
    cur_m = make_measurement(lognormal_p50s(1, cv=0.01, shift=0.3))
    baseline = Baseline("t.py::test", base_m, dict(FINGERPRINT), "2024-01-01T00:00:00+00:00")
    verdicts = tuple(judge(baseline, cur_m, FINGERPRINT, run_drift=0.0, min_runs=1))
    gated = TestRecord("t.py::test", cur_m, baseline, verdicts, fingerprint=FINGERPRINT)
    updating = replace(gated, policy=UPDATING)
    assert gated.outcome == "failed" and updating.outcome == "passed"
    for record in (gated, updating):
        test = gate_result([], [(record.nodeid, record.decision)])
        assert test.failed == (record.outcome == "failed")
        assert build_json_report([record])["tests"][0]["outcome"] == record.outcome


def test_the_session_fails_the_test_exactly_when_the_reports_say_failed() -> None:
    """judge_test and the reports read one rule: run it on the unsettled comparison beyond its bound."""
    from pytest_tfserving.report.reporter import PerfReporter
    from pytest_tfserving.session import HANDLE_KEY, TfservingSession

    session = object.__new__(TfservingSession)
    session.settings = SimpleNamespace(update_baselines=False, perf_hardware_mismatch="warn",  # type: ignore[assignment]
                                       perf_inconclusive="fail")
    session.reporter = PerfReporter(None, session.settings)  # type: ignore[arg-type]
    item = SimpleNamespace(nodeid=NODEID, stash=pytest.Stash(), get_closest_marker=lambda name: None)
    item.stash[HANDLE_KEY] = SimpleNamespace(recorded=[], relative=[UNSETTLED_BEYOND], notes=[], checks=None)
    with pytest.raises(pytest.fail.Exception, match=r"claim not shown \(point estimate beyond the bound"):
        session.judge_test(item)  # type: ignore[arg-type]
    [record] = session.reporter.records
    assert record.outcome == "failed"
    assert build_json_report([record])["tests"][0]["outcome"] == "failed"
