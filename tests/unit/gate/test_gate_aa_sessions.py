"""benchmarks/gate_aa_sessions.py: the figures its summary claims (exact binomial bounds, the count of
false-alarm PRs) are right; the sessions themselves are the benchmark's real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.module_loading import load_benchmark

aa = load_benchmark("gate_aa_sessions")


def test_zero_of_n_bound_is_the_closed_form() -> None:
    # 0 of n: P(0 events) = (1 - p) ** n = 5 % at the one-sided 95 % bound.
    for n in (24, 149, 150, 352):
        assert aa.upper_bound(0, n) == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)
    assert aa.upper_bound(0, 149) <= 0.02 < aa.upper_bound(0, 148)


def test_two_sided_interval_matches_known_values() -> None:
    low, high = aa.clopper_pearson(0, 24)
    assert low == 0 and high == pytest.approx(0.1425, abs=1e-4)  # "0 of 24 bounds only below 14 %"
    low, high = aa.clopper_pearson(3, 100)
    assert low == pytest.approx(0.00622, abs=1e-4) and high == pytest.approx(0.08518, abs=1e-4)


def _session(project: str, *verdicts: str) -> dict[str, object]:
    return {"project": project, "wall_s": 30.0, "error": None,
            "verdicts": [{"metric": "p50_ms", "verdict": v, "change": 0.01, "detectable": 0.2}
                         for v in verdicts]}


def test_summary_counts_a_pr_once_and_leaves_errors_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = {"settings": {}, "sessions": [
        _session("proj_a", "pass", "regression"), _session("proj_b", "regression", "regression"),
        _session("proj_a", "pass"), {"error": "no report", "rc": 3, "wall_s": 0.6},
    ]}
    path = tmp_path / "aa.json"
    path.write_text(json.dumps(state))
    aa.summarize(type("Args", (), {"file": str(path)})())
    out = capsys.readouterr().out
    assert "sessions: 4 run, 1 errors, 3 judged" in out
    assert "false-alarm PRs: 2 of 3 = 66.67%" in out
