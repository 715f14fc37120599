"""benchmarks/gate_quality.py's A/B analysis: chunking, rates and effects on a known collect-ab file.

The file is written by hand with a known effect per role, so the printed rates are predictable; the
collection itself needs servers and minutes and lives in the benchmark, not here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from tests.module_loading import load_benchmark


@pytest.fixture(scope="module")
def gate_quality() -> ModuleType:
    return load_benchmark("gate_quality")


def _side(values: list[float]) -> list[dict[str, float]]:
    return [{"p50_ms": v, "rps": 1000 / v} for v in values]


def _ab_file(tmp_path: Path, rounds: int, effects: dict[str, float]) -> Path:
    """Two sessions; reference windows wobble by +-2 %, candidate = reference x (1 + effect) x wobble."""
    sessions = []
    for s in range(2):
        roles = {}
        for role, effect in effects.items():
            ref = [1.0 + 0.02 * math.sin(i + s) for i in range(rounds)]
            cand = [r * (1 + effect) * (1 + 0.004 * math.cos(3 * i)) for i, r in enumerate(ref)]
            roles[role] = {"reference": _side(ref), "candidate": _side(cand)}
        sessions.append({"session": s, "roles": roles})
    data = {"mode": "ab", "roles": {"base": "tiny_l0", "slow5": "a", "slow10": "b"}, "calibration": {},
            "window_s": 0.5, "warmup_s": 1.0, "rewarm_s": 0.2, "rounds": rounds, "sessions": sessions}
    path = tmp_path / "ab.json"
    path.write_text(json.dumps(data))
    return path


def test_analyze_ab_counts_disjoint_chunks_and_detects_known_effects(
    gate_quality: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ab_file(tmp_path, rounds=20, effects={"base": 0.0, "slow5": 0.05, "slow10": 0.10})

    def rows_of(*extra: str) -> tuple[dict[tuple[str, ...], list[str]], str]:
        gate_quality.main(["analyze-ab", str(path), "--k", "10", "--tolerance", "0.03", *extra])
        out = capsys.readouterr().out
        return {tuple(line.split()[:3]): line.split()[3:] for line in out.splitlines()
                if len(line.split()) > 3}, out

    # With no offset between processes allowed for, the windows' 0.4 % noise is all there is:
    # 2 sessions x 20 rounds / K=10 -> 4 verdicts per role; no false alarm, both slowdowns caught.
    rows, out = rows_of("--offset-sd", "0")
    for method in ("signed_rank", "student_t"):
        assert rows[(method, "10", "3.0%")] == ["4", "0.0%", "0.0%", "4", "100.0%", "4", "100.0%", "17.0"]
    # The plugin's sequential rule on chunks of 20 pairs: 2 verdicts per role, decided at the start.
    assert rows[("signed_rank", "7+3..20", "3.0%")][:7] == ["2", "0.0%", "0.0%", "2", "100.0%", "2", "100.0%"]
    assert "real effect slow10: +10.0" in out
    # With the plugin's 1.5 % offset between processes, +5 % at tolerance 3 % is inside what two
    # processes of one deployment may differ by at alpha 1 %; +10 % is not.
    rows, _ = rows_of()
    assert rows[("signed_rank", "10", "3.0%")][3:7] == ["4", "0.0%", "4", "100.0%"]


def test_analyze_ab_rejects_a_file_from_collect(
    gate_quality: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"runs": []}))
    with pytest.raises(SystemExit, match="collect-ab"):
        gate_quality.main(["analyze-ab", str(path)])


@pytest.mark.parametrize(
    ("token", "name", "kwargs"),
    [("3", "tiny_l3", {"extra_dense_layers": 3}),
     ("w20", "tiny_l0_w20", {"extra_dense_layers": 0, "width": 20}),
     ("1w18", "tiny_l1_w18", {"extra_dense_layers": 1, "width": 18}),
     ("2u360", "tiny_l2_u360", {"extra_dense_layers": 2, "dense_units": 360})],
)
def test_candidate_tokens_name_the_model_and_its_knobs(
    gate_quality: ModuleType, token: str, name: str, kwargs: dict[str, int]
) -> None:
    assert gate_quality._parse_candidate(token) == (name, kwargs)


def test_bad_candidate_token_says_the_forms(gate_quality: ModuleType) -> None:
    with pytest.raises(SystemExit, match="extra dense layers"):
        gate_quality._parse_candidate("big")
