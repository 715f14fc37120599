"""Baseline files: naming, round trip, atomic writes, refusal to touch broken files, git refs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.gate.baseline_lookup import BaselineLookup
from pytest_tfserving.gate.baselines import (
    SCHEMA_VERSION,
    BaselineError,
    baseline_filename,
    baseline_path,
    load_baseline,
    read_baseline_from_git,
    write_baseline,
)
from pytest_tfserving.gate.gate_settings import GateSettings
from tests.unit.gate.gate_factories import MakeMeasurement, lognormal_p50s

NODEID = "perf_suites/test_resnet.py::test_fp32[grpc]"


def test_filename_is_readable_and_stable() -> None:
    assert baseline_filename(NODEID) == "perf_suites__test_resnet__test_fp32-grpc.json"
    assert baseline_filename("test_a.py::test_b") == "test_a__test_b.json"
    assert baseline_filename("t.py::TestX::test_y[rest-4]") == "t__TestX__test_y-rest-4.json"


def test_filename_of_odd_ids_is_safe_and_distinct() -> None:
    odd = ["t.py::test[a/b]", "t.py::test[a b]", "t.py::test[a_b]", "t.py::test[a:b]", "t.py::test[a[b]]"]
    names = [baseline_filename(n) for n in odd]
    assert len(set(names)) == len(names)
    assert all("/" not in n and " " not in n and ":" not in n and n.endswith(".json") for n in names)
    assert baseline_filename("t.py::test[a/b]") == baseline_filename("t.py::test[a/b]")
    long = baseline_filename("t.py::test[" + "x" * 400 + "]")
    assert len(long) < 200


def test_round_trip(tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]) -> None:
    m = make_measurement(lognormal_p50s(0), latency_histogram={"count": 3, "buckets": [[1, 2], [5, 1]]})
    path = baseline_path(tmp_path / "baselines", NODEID)
    change = write_baseline(path, NODEID, m, fingerprint, created="2024-05-01T00:00:00+00:00")
    assert change.created
    loaded = load_baseline(path, NODEID)
    assert loaded is not None
    assert loaded.measurement == m
    assert loaded.fingerprint == fingerprint
    assert loaded.nodeid == NODEID and loaded.schema_version == SCHEMA_VERSION
    text = path.read_text()
    assert text.endswith("}\n")
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION
    assert list(data) == sorted(data)  # sort_keys for stable diffs
    assert len(data["measurement"]["windows"]) == 10  # per-window summaries kept for the judge
    assert '"buckets": [\n' in text and "[1, 2]" in text  # scalar lists stay on one line
    assert "  \"nodeid\": " in text  # indented


def test_rewrite_reports_old_and_new(tmp_path: Path, make_measurement: MakeMeasurement,
                                     fingerprint: dict[str, Any]) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 6), fingerprint)
    change = write_baseline(path, NODEID, make_measurement([2.5] * 6), fingerprint)
    assert not change.created
    p50 = next(c for c in change.metrics if c.metric == "p50_ms")
    assert (p50.old, p50.new) == (2.0, 2.5)
    lines = change.lines()
    assert lines[0].startswith(f"updated baseline {path}")
    assert any(line.strip() == "p50_ms: 2 -> 2.5 (+25.0%)" for line in lines)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path, make_measurement: MakeMeasurement,
                                           fingerprint: dict[str, Any]) -> None:
    for i in range(3):
        write_baseline(tmp_path / "b.json", NODEID, make_measurement([2.0 + i] * 5), fingerprint)
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]


def test_failed_write_keeps_old_file_and_cleans_up(tmp_path: Path, make_measurement: MakeMeasurement,
                                                   fingerprint: dict[str, Any]) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint)
    before = path.read_text()
    unserialisable = {**fingerprint, "server": object()}
    with pytest.raises(TypeError):
        write_baseline(path, NODEID, make_measurement([3.0] * 5), unserialisable)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert load_baseline(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"schema_version": 0, "measurement": {}}', "has schema_version 0"),
        ('{"schema_version": 1, "nodeid": "x"}', "missing or has bad fields"),
    ],
)
def test_malformed_file_is_an_error_and_never_overwritten(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any], content: str,
    expected: str,
) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=expected) as info:
        load_baseline(path)
    assert str(path) in str(info.value) and "--update-baselines" in str(info.value)
    with pytest.raises(BaselineError):
        write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint)
    assert path.read_text() == content
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]


def test_newer_schema_says_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(BaselineError, match="newer pytest-tfserving; upgrade the plugin"):
        load_baseline(path)


def test_baseline_of_another_test_is_an_error(tmp_path: Path, make_measurement: MakeMeasurement,
                                              fingerprint: dict[str, Any]) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, "other.py::test", make_measurement([2.0] * 5), fingerprint)
    with pytest.raises(BaselineError, match=r"was recorded for 'other\.py::test'"):
        load_baseline(path, NODEID)


def test_non_finite_values_are_stored_as_null(tmp_path: Path, make_measurement: MakeMeasurement,
                                              fingerprint: dict[str, Any]) -> None:
    m = make_measurement([2.0] * 5, server_p50_ms=float("nan"))
    write_baseline(tmp_path / "b.json", NODEID, m, fingerprint)
    loaded = load_baseline(tmp_path / "b.json")
    assert loaded is not None and loaded.measurement.server_p50_ms is None


def test_huge_histogram_is_trimmed(tmp_path: Path, make_measurement: MakeMeasurement,
                                   fingerprint: dict[str, Any]) -> None:
    hist = {"count": 5000, "buckets": [[i, 1] for i in range(5000)]}
    write_baseline(tmp_path / "b.json", NODEID, make_measurement([2.0] * 5, latency_histogram=hist),
                   fingerprint)
    loaded = load_baseline(tmp_path / "b.json")
    assert loaded is not None and loaded.measurement.latency_histogram is None
    assert loaded.measurement.extra["latency_histogram_trimmed"] == 1.0


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    return repo


def test_read_from_git_ref(repo: Path, make_measurement: MakeMeasurement,
                           fingerprint: dict[str, Any]) -> None:
    rel = Path("baselines") / baseline_filename(NODEID)
    write_baseline(repo / rel, NODEID, make_measurement([2.0] * 5), fingerprint)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "baseline")
    write_baseline(repo / rel, NODEID, make_measurement([3.0] * 5), fingerprint)  # uncommitted change
    at_head = read_baseline_from_git("HEAD", repo, rel)
    assert at_head is not None and at_head.measurement.p50_ms == 2.0
    assert at_head.source == f"HEAD:{rel.as_posix()}"
    absolute = read_baseline_from_git("main", repo, (repo / rel).resolve())
    assert absolute is not None and absolute.measurement.p50_ms == 2.0
    assert read_baseline_from_git("HEAD", repo, "baselines/absent.json") is None


def test_git_unknown_ref_is_an_error_with_gits_message(repo: Path) -> None:
    (repo / "f").write_text("x")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    with pytest.raises(BaselineError, match="git ref 'origin/nope'") as info:
        read_baseline_from_git("origin/nope", repo, "baselines/x.json")
    assert "fatal" in str(info.value) or "Needed a single revision" in str(info.value)


def test_git_malformed_committed_file_names_the_ref(repo: Path) -> None:
    (repo / "b.json").write_text("{broken")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    with pytest.raises(BaselineError, match=r"baseline HEAD:b\.json is not valid JSON"):
        read_baseline_from_git("HEAD", repo, "b.json")


GATE = GateSettings(
    metrics=("p50_ms", "rps"),
    tolerances={"p50_ms": 0.05, "rps": 0.1},
    ceilings={"p99_ms": 250.0, "min_rps": 50.0},
    settings={"perf_alpha": 0.01, "perf_hardware_mismatch": "fail", "perf_max_windows": 20},
)


def test_gate_settings_round_trip(tmp_path: Path, make_measurement: MakeMeasurement,
                                  fingerprint: dict[str, Any]) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint, gate_settings=GATE)
    loaded = load_baseline(path, NODEID)
    assert loaded is not None and loaded.gate_settings == GATE
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2  # an optional field: older plugins still read the file
    assert data["gate_settings"]["metrics"] == ["p50_ms", "rps"]
    assert data["gate_settings"]["settings"]["perf_max_windows"] == 20
    assert '"metrics": ["p50_ms", "rps"]' in path.read_text()  # one line in the diff


def test_baseline_without_gate_settings_reads_as_not_recorded(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint)
    assert "gate_settings" not in json.loads(path.read_text())
    loaded = load_baseline(path, NODEID)
    assert loaded is not None and loaded.gate_settings is None
    # A schema-1 file (no history, no gate settings) is still read.
    data = json.loads(path.read_text())
    data["schema_version"] = 1
    del data["runs"]
    path.write_text(json.dumps(data))
    old = load_baseline(path, NODEID)
    assert old is not None and old.gate_settings is None


def test_bad_gate_settings_are_an_error_naming_the_file(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint, gate_settings=GATE)
    data = json.loads(path.read_text())
    data["gate_settings"]["tolerances"] = {"p50_ms": "loose"}
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match=r"b\.json is missing or has bad fields"):
        load_baseline(path, NODEID)


def test_measurements_at_ref_lists_every_committed_baseline(
    repo: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    ids = ["t.py::test_a", "t.py::test_b[x]@latency", "sub/t.py::test_c[a/b]"]  # the last one hashed
    for mid in ids:
        write_baseline(baseline_path(repo / "baselines", mid), mid, make_measurement([2.0] * 5), fingerprint)
    (repo / "baselines" / "README.md").write_text("not a baseline")
    (repo / "baselines" / "broken.json").write_text("{not json")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "baselines")
    # What the PR branch commits, and its working tree, do not count: the ref's list stands.
    _git(repo, "checkout", "-q", "-b", "pr")
    write_baseline(baseline_path(repo / "baselines", "t.py::test_new"), "t.py::test_new",
                   make_measurement([2.0] * 5), fingerprint)
    (repo / "baselines" / baseline_filename("t.py::test_a")).unlink()
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the PR renames test_a")
    (repo / "baselines" / baseline_filename("t.py::test_b[x]@latency")).unlink()
    lookup = BaselineLookup(repo / "baselines", "main", repo)
    assert lookup.measurements_at_ref() == tuple(sorted(ids))
    assert BaselineLookup(repo / "elsewhere", "main", repo).measurements_at_ref() == ()
    with pytest.raises(BaselineError, match="git ref 'nope'"):
        BaselineLookup(repo / "baselines", "nope", repo).measurements_at_ref()


def test_all_baselines_reads_the_tree_or_the_ref_and_skips_unreadable_files(
    repo: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    """What the drift pool reads: every readable baseline, the ref's under --baseline-ref."""
    for mid in ("t.py::test_a", "t.py::test_b"):
        write_baseline(baseline_path(repo / "baselines", mid), mid, make_measurement([2.0] * 5), fingerprint)
    (repo / "baselines" / "broken.json").write_text("{not json")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "baselines")
    write_baseline(baseline_path(repo / "baselines", "t.py::test_new"), "t.py::test_new",
                   make_measurement([2.0] * 5), fingerprint)  # the PR's, uncommitted
    tree = BaselineLookup(repo / "baselines", None, repo).all_baselines()
    assert sorted(b.nodeid for b in tree) == ["t.py::test_a", "t.py::test_b", "t.py::test_new"]
    at_ref = BaselineLookup(repo / "baselines", "main", repo).all_baselines()
    assert sorted(b.nodeid for b in at_ref) == ["t.py::test_a", "t.py::test_b"]
    assert BaselineLookup(repo / "nowhere", None, repo).all_baselines() == []
