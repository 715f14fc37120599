"""Reports: the terminal table, Markdown, JSON and PNG carry what a reviewer needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.gate.baselines import Baseline
from pytest_tfserving.gate.ceilings import check_ceilings, parse_perf_marker
from pytest_tfserving.load.histogram import Histogram
from pytest_tfserving.report.json_report import build_json_report, write_json_report
from pytest_tfserving.report.markdown import append_step_summary, render_markdown
from pytest_tfserving.report.plots import plot_record, plot_records
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.terminal import format_details, format_table
from tests.unit.gate.gate_factories import FINGERPRINT, MakeMeasurement, lognormal_p50s
from tests.unit.report.report_factories import metric, relative

REGRESSED = "perf/test_resnet.py::test_fp32[grpc]"


@pytest.fixture
def records(make_measurement: MakeMeasurement) -> list[TestRecord]:
    """One record of each kind. The verdicts are built, not judged: these tests are about what the
    reports show, and the judges' own tests say when they return what."""
    base_m = make_measurement(lognormal_p50s(0, cv=0.01))
    cur_m = make_measurement(lognormal_p50s(1, cv=0.01, shift=0.3))
    baseline = Baseline(REGRESSED, base_m, dict(FINGERPRINT), "2024-01-01T00:00:00+00:00", source="b.json")
    current_fp = {**FINGERPRINT, "server": "tensorflow 2.22.0"}
    verdicts = (metric("regression", detectable=0.07),
                metric("pass", metric="rps", baseline=500.0, current=385.0, change=-0.23, detectable=0.05))
    regressed = TestRecord(REGRESSED, cur_m, baseline, verdicts,
                           tuple(check_ceilings(parse_perf_marker({"p99_ms": 3.0}), cur_m)),
                           fingerprint=current_fp)
    same = make_measurement(lognormal_p50s(2, cv=0.01))
    same_base = Baseline("x", same, dict(FINGERPRINT), "t")
    passing = TestRecord("perf/test_resnet.py::test_fp32[rest]", same, same_base,
                         (metric("pass", change=0.01, detectable=0.34),))
    new = TestRecord("perf/test_new.py::test_new", make_measurement([1.0] * 5))
    a = make_measurement(lognormal_p50s(3, cv=0.01, median=1.0))
    relative_record = TestRecord("perf/test_int8.py::test_int8_faster", a, verdicts=(relative("pass", 0.5),))
    broken = TestRecord("perf/test_broken.py::test_x", error="ServerCrashed: exit code 137\nlog tail...")
    return [regressed, passing, new, relative_record, broken]


def test_outcomes(records: list[TestRecord]) -> None:
    assert [r.outcome for r in records] == ["failed", "passed", "new", "passed", "error"]


def test_terminal_table_fits_the_width(records: list[TestRecord]) -> None:
    for width in (80, 120):
        lines = format_table(records, width=width)
        assert all(len(line) <= width for line in lines), lines
    lines = format_table(records, width=120)
    assert lines[0].split() == ["metric", "baseline", "current", "change", "detects", "verdict"]
    header = lines.index(f"{REGRESSED}  failed")  # the test's id once, whole, with its outcome
    regression = lines[header + 1]
    assert regression.split()[0] == "p50_ms" and "+30" in regression and regression.endswith("regression")
    assert any("ceiling p99_ms" in line for line in lines)
    new = lines.index("perf/test_new.py::test_new  new (no baseline)")
    assert lines[new + 1].split()[-1] == "new"
    relative = next(line for line in lines if line.startswith("  int8/fp32"))
    assert relative.split()[1:3] == ["p50_ms", "<=0.6x"] and relative.endswith("pass")
    assert "perf/test_broken.py::test_x  error" in lines
    assert any("error: ServerCrashed: exit code 137" in line for line in lines)
    narrow = format_table(records, width=80)
    assert {r.nodeid for r in records} <= {line.rsplit("  ", 1)[0] for line in narrow}  # ids whole


def test_terminal_details_explain_failures(records: list[TestRecord]) -> None:
    details = format_details(records)
    assert any(d.startswith(REGRESSED + ": p50_ms: regression") for d in details)
    assert any("p99_ms" in d and "> p99_ms=3" in d for d in details)


def test_markdown_table_and_details(records: list[TestRecord], tmp_path: Path) -> None:
    text = render_markdown(records)
    assert text.startswith("## Performance gate\n")
    assert "**1 failed, 1 error, 2 passed, 1 new (no baseline)**" in text
    worst = "this run could detect changes of at least 34% (p50_ms of perf/test_resnet.py::test_fp32[rest])"
    assert worst in text
    assert "| test | measurement | metric | baseline | current | change | detects | verdict |" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| `{REGRESSED}` |  | p50_ms"))
    assert "❌ regression" in row and "+30" in row
    assert "environment differs from the baseline: server: tensorflow 2.21.0 -> tensorflow 2.22.0" in text
    assert "```\nServerCrashed: exit code 137\nlog tail...\n```" in text
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    append_step_summary(records, summary)
    append_step_summary(records[:1], summary, title="Second")
    content = summary.read_text()
    assert content.startswith("earlier step\n## Performance gate")
    assert "## Second" in content


def test_markdown_escapes_pipes(make_measurement: MakeMeasurement) -> None:
    text = render_markdown([TestRecord("t.py::test[a|b]", make_measurement([1.0] * 5))])
    assert "`t.py::test[a\\|b]`" in text


def test_json_report(records: list[TestRecord], tmp_path: Path) -> None:
    path = write_json_report(records, tmp_path / "out" / "perf.json", fingerprint=FINGERPRINT)
    data = json.loads(path.read_text())
    assert data["summary"] == {"error": 1, "failed": 1, "new": 1, "passed": 2}
    assert data["fingerprint"]["cpu_model"] == FINGERPRINT["cpu_model"]
    test = next(t for t in data["tests"] if t["nodeid"] == REGRESSED)
    assert test["outcome"] == "failed"
    p50 = next(v for v in test["verdicts"] if v["metric"] == "p50_ms")
    assert p50["verdict"] == "regression" and p50["kind"] == "baseline"
    assert 0.25 < p50["change"] < 0.35 and p50["ci_low"] < p50["change"] < p50["ci_high"]
    assert p50["message"].startswith("p50_ms: regression")
    assert len(test["measurement"]["windows"]) == 10
    assert test["baseline"]["source"] == "b.json"
    assert test["ceiling_failures"][0]["key"] == "p99_ms"
    relative = next(t for t in data["tests"] if t["nodeid"].endswith("test_int8_faster"))
    assert relative["verdicts"][0]["kind"] == "relative" and relative["verdicts"][0]["ratio"] < 0.6
    broken = next(t for t in data["tests"] if t["outcome"] == "error")
    assert broken["measurement"] is None and broken["error"].startswith("ServerCrashed")


def test_json_report_has_no_nan(make_measurement: MakeMeasurement) -> None:
    m = make_measurement([1.0] * 5, server_p50_ms=float("nan"))
    text = json.dumps(build_json_report([TestRecord("t.py::t", m)]), allow_nan=False)
    assert '"server_p50_ms": null' in text


def _histogram(median_ms: float, seed: int) -> dict[str, Any]:
    h = Histogram()
    h.record_many(np.random.default_rng(seed).lognormal(np.log(median_ms), 0.2, 5000))
    return h.to_dict()


def test_png_from_latency_histograms(make_measurement: MakeMeasurement, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    base = make_measurement([2.0] * 5, latency_histogram=_histogram(2.0, 0))
    cur = make_measurement([2.4] * 5, latency_histogram=_histogram(2.4, 1))
    record = TestRecord(REGRESSED, cur, Baseline(REGRESSED, base, {}, "t"))
    path = plot_record(record, tmp_path / "p.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_png_from_window_p50s_and_names(records: list[TestRecord], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    paths = plot_records(records, tmp_path / "plots")
    assert len(paths) == 4  # the errored record has nothing to draw
    assert tmp_path / "plots" / "perf__test_resnet__test_fp32-grpc.png" in paths
    assert all(p.stat().st_size > 1000 for p in paths)


def test_a_failed_assertion_is_a_failure_not_an_error() -> None:
    """The test's own assertion (e.g. a hit ratio) failed: the table says failed, a crash says error."""
    failed = TestRecord("t.py::test_cache", error="AssertionError: hit ratio 0.000", assertion_failed=True)
    crashed = TestRecord("t.py::test_crash", error="ServerCrashed: exit code 137")
    assert (failed.outcome, crashed.outcome) == ("failed", "error")
    lines = format_table([failed, crashed], width=120)
    assert any("failed: AssertionError: hit ratio 0.000" in line for line in lines)
    assert any("error: ServerCrashed" in line for line in lines)
    markdown = render_markdown([failed])
    assert "failed:\n\n```\nAssertionError" in markdown
