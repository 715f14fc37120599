"""The terminal table as users read it (#19): two perf tests whose names share a suffix keep their
full ids, each once as its group's header, and the verdicts are coloured on a colour terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.plugin.conftest import FAST_ARGS

# Ids of about 70 characters: they fit an 80-column terminal whole, and the old table (ids cut
# from the left to make room for the other columns) read both as "…closed_loop_of_the_tiny_model".
SHARED_SUFFIX = """
import pytest

@pytest.mark.perf(max_error_rate=0, tolerance=0.5)
def test_grpc_closed_loop_of_the_tiny_model(tfserving_server, perf):
    perf.measure(tfserving_server, name="fp32", protocol="grpc", concurrency=1)

@pytest.mark.perf(max_error_rate=0, tolerance=0.5)
def test_rest_closed_loop_of_the_tiny_model(tfserving_server, perf):
    perf.measure(tfserving_server, name="fp32", protocol="rest", concurrency=1)
"""
GRPC = "perf_suite/test_protocols.py::test_grpc_closed_loop_of_the_tiny_model"
REST = "perf_suite/test_protocols.py::test_rest_closed_loop_of_the_tiny_model"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def table(stdout: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(stdout) if "tfserving performance" in line)
    return stdout[start:]


def test_two_tests_sharing_a_suffix_keep_their_full_ids(
    perf_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    suite = perf_project.mkpydir("perf_suite")
    (suite / "test_protocols.py").write_text(SHARED_SUFFIX)
    report = tmp_path / "perf.json"
    result = perf_project.runpytest(*FAST_ARGS, "--color=yes", f"--perf-report-json={report}")
    result.assert_outcomes(passed=2)
    coloured = table(result.outlines)
    lines = [ANSI.sub("", line) for line in coloured]
    for test_id in (GRPC, REST):
        assert lines.count(test_id) == 1, lines  # whole, once, as its group's header
        assert sum(test_id in line for line in lines) == 1, lines
        row = lines[lines.index(test_id) + 1].split()  # its measurement below it, by name
        assert row[:3] == ["@fp32", "p50_ms", "-"] and row[-1] == "new", lines
    assert not any(line.startswith("…") for line in lines), lines
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["metric"])
    assert all(len(line) <= 80 for line in lines[start : lines.index("", start)]), lines
    # The summary line in the terminal's colours (nothing failed or unsettled: green); plain in CI.
    summary = next(i for i, line in enumerate(lines) if line == "2 new (no baseline)")
    assert coloured[summary] == "\x1b[32m2 new (no baseline)\x1b[0m", coloured[summary]
    data = json.loads(report.read_text())
    assert {(t["test"], t["measurement_name"]) for t in data["tests"]} == {(GRPC, "fp32"), (REST, "fp32")}
