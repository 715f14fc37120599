"""The Markdown and JSON reports say what the terminal says: the worst detectable change at the top,
each verdict's own figure, inconclusive results counted as such; the JSON keeps its old keys."""

from __future__ import annotations

import json

from pytest_tfserving.report.json_report import build_json_report
from pytest_tfserving.report.markdown import render_markdown
from pytest_tfserving.report.records import TestRecord
from pytest_tfserving.report.terminal import reach, summary_line
from tests.unit.report.report_factories import MEASUREMENT, judged, metric, relative

TEST = "perf/test_models.py::test_variants[grpc]"
RECORDS = [
    judged(f"{TEST}@fp32", metric("pass", detectable=0.07), metric("inconclusive", metric="p99_ms",
                                                                    detectable=0.4)),
    judged(f"{TEST}@int8", metric("pass", detectable=None)),
    TestRecord(TEST, verdicts=(relative("pass", detectable=0.12),)),
    TestRecord("perf/t.py::test_new", MEASUREMENT),
]


def test_markdown_top_table_and_details_carry_the_detectable_figures() -> None:
    text = render_markdown(RECORDS)
    top = text.split("| test |")[0]
    assert f"**{summary_line(RECORDS)}**" in top
    assert "inconclusive (could detect >= 40%; not failed: --perf-inconclusive=fail makes them fail)" in top
    assert (f"this run could detect changes of at least 40% (p99_ms of {TEST}@fp32); "
            "1 verdict could not be estimated") in top
    assert "| test | measurement | metric | baseline | current | change | detects | verdict |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows[0].startswith(f"| `{TEST}` | @fp32 | p50_ms |") and "| >= 7% | pass |" in rows[0]
    assert rows[1].startswith("|  |  | p99_ms |") and rows[1].endswith("| >= 40% | ⚠️ inconclusive |")
    assert rows[2].startswith("|  | @int8 | p50_ms |") and "| ? | pass |" in rows[2]
    assert rows[3].startswith("|  | int8/fp32 | p50_ms |") and "| >= 12% |" in rows[3]
    assert rows[4].startswith("| `perf/t.py::test_new` |  | p50_ms |")
    assert "p99_ms: inconclusive - " in text and "(this run could detect >= 40%)" in text


def test_json_has_detectable_per_verdict_and_the_header_figure() -> None:
    report = build_json_report(RECORDS)
    json.dumps(report, allow_nan=False)
    assert report["schema_version"] == 1 and report["summary"] == {"inconclusive": 1, "new": 1, "passed": 2}
    assert report["summary_text"] == summary_line(RECORDS)
    assert report["detectable"] == {
        "worst": 0.4, "worst_verdict": f"p99_ms of {TEST}@fp32", "verdicts": 4, "not_estimated": 1,
        "not_compared": 0, "text": reach(RECORDS).line(),
    }
    fp32, int8, comparison, new = report["tests"]
    assert [v["detectable"] for v in fp32["verdicts"]] == [0.07, 0.4]
    assert int8["verdicts"][0]["detectable"] is None
    assert comparison["verdicts"][0]["detectable"] == 0.12 and comparison["verdicts"][0]["kind"] == "relative"
    assert (fp32["test"], fp32["measurement_name"]) == (TEST, "fp32")
    assert (comparison["test"], comparison["measurement_name"]) == (TEST, None)
    assert new["outcome"] == "new" and new["verdicts"] == []
    old_keys = {"nodeid", "outcome", "error", "measurement", "baseline", "verdicts", "ceiling_failures",
                "fingerprint"}
    assert all(old_keys <= test.keys() for test in report["tests"])
    assert {"schema_version", "fingerprint", "summary", "tests"} <= report.keys()
