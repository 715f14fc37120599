"""What mutation testing (scripts/mutation.sh) found that the baseline tests did not pin down.

Each test here fails under a mutant of ``gate/baselines.py`` that survived the other tests. The
groups: file names are a stored format (a changed name orphans every committed baseline, and with it
the gate); the printed change says what happened; the history decision says why; the git errors
quote git, not Python's bytes; and the file stays readable and reviewable.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.gate.baselines import (
    _MAX_STEM,
    MAX_HISTOGRAM_CHARS,
    Baseline,
    BaselineError,
    Change,
    MetricChange,
    baseline_filename,
    dumps_baseline,
    history_decision,
    load_baseline,
    read_baseline_from_git,
    write_baseline,
)
from pytest_tfserving.gate.fingerprint import compare_fingerprints
from tests.unit.gate.gate_factories import MakeMeasurement

NODEID = "perf_suites/test_resnet.py::test_fp32[grpc]"

# -- file names: a stored format ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodeid", "name"),
    [
        ("suite/spec.yaml::case", "suite__spec.yaml__case.json"),  # not a .py file: nothing cut off
        ("dir\\t.py::test", "dir__t__test.json"),  # a path separator, either way
        (".hidden/test_x.py::test_y", "hidden__test_x__test_y-a374cada.json"),  # never a hidden file
        ("t.py::test_MAX", "t__test_MAX.json"),
        ("...", "test-6eae3a5b.json"),  # nothing readable left
        ("t.py::test[a[b]]", "t__test-a-b-26b53c06.json"),
        ("t.py::test[a/b]", "t__test-a_b-577e9e1b.json"),
    ],
)
def test_the_file_name_of_an_odd_id_is_pinned(nodeid: str, name: str) -> None:
    assert baseline_filename(nodeid) == name


def test_a_stem_of_the_maximum_length_keeps_its_readable_name() -> None:
    at_limit = "t.py::test_" + "x" * (_MAX_STEM - len("t__test_"))
    assert baseline_filename(at_limit) == "t__test_" + "x" * (_MAX_STEM - len("t__test_")) + ".json"
    over = baseline_filename(at_limit + "x")
    assert re.fullmatch(rf"t__test_x{{{_MAX_STEM - len('t__test_')}}}-[0-9a-f]{{8}}\.json", over), over


@pytest.mark.parametrize(
    ("one", "other"), [("t.py::test[x][y]", "t.py::test[x-y]"), ("t.py::test[a[b]]", "t.py::test[a-b]")]
)
def test_ids_that_read_alike_get_their_own_files(one: str, other: str) -> None:
    assert baseline_filename(one) != baseline_filename(other)


# -- the printed change ---------------------------------------------------------------------------


def test_a_first_write_prints_new_and_dashes_for_what_was_not_there(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    path = tmp_path / "b.json"
    change = write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint)
    lines = change.lines()
    assert lines[0] == f"new baseline {path} ({NODEID})"
    assert "  p50_ms: - -> 2" in lines
    assert not any("gpu_memory_mb" in line for line in lines)  # measured in neither run: not listed
    assert lines[-1] == "  history: 1 run"


def test_a_metric_the_new_run_lacks_prints_a_dash(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 5, gpu_memory_mb=512.0), fingerprint)
    change = write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint, join_history=True,
                            history_reason="same deployment, no significant change")
    lines = change.lines()
    assert lines[0] == f"updated baseline {path} ({NODEID})"
    assert "  gpu_memory_mb: 512 -> -" in lines
    assert lines[-1] == "  history: 2 runs (same deployment, no significant change)"


def test_metric_change_lines() -> None:
    assert MetricChange("p50_ms", None, 2.0).line() == "p50_ms: - -> 2"
    assert MetricChange("rss_mb", 300.0, None).line() == "rss_mb: 300 -> -"
    assert MetricChange("p50_ms", 2.0, 2.5).line() == "p50_ms: 2 -> 2.5 (+25.0%)"
    change = Change(Path("b.json"), "t.py::t", created=False, runs=3)
    assert change.lines() == ["updated baseline b.json (t.py::t)", "  history: 3 runs"]


# -- writing --------------------------------------------------------------------------------------


def test_the_default_stamp_is_utc_to_the_second(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    write_baseline(tmp_path / "b.json", NODEID, make_measurement([2.0] * 5), fingerprint)
    created = json.loads((tmp_path / "b.json").read_text())["created"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", created), created


def test_a_history_of_one_keeps_only_the_newest_run(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint, history=1)
    change = write_baseline(path, NODEID, make_measurement([3.0] * 5), fingerprint, join_history=True,
                            history=1)
    assert change.runs == 1
    loaded = load_baseline(path, NODEID)
    assert loaded is not None and loaded.run_values("p50_ms") == [3.0]
    with pytest.raises(ValueError, match=r"^history=0 must be >= 1 \(runs kept per baseline\)$"):
        write_baseline(path, NODEID, make_measurement([3.0] * 5), fingerprint, history=0)


def test_the_file_is_indented_json_with_scalar_lists_on_one_line(
    make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    baseline = Baseline(NODEID, make_measurement([2.0] * 3), {**fingerprint, "nested": {"a": {"b": [1, 2]}}},
                        "2024-01-01T00:00:00+00:00")
    text = dumps_baseline(baseline)
    standard = json.dumps(json.loads(text), indent=2, sort_keys=True)
    one_line_scalars = re.sub(r"\[\n\s*([^\[\]{}]*?)\n\s*\]",
                              lambda m: "[" + ", ".join(v.strip() for v in m[1].split(",\n")) + "]", standard)
    assert text == one_line_scalars + "\n"
    assert '    "nested": {\n      "a": {\n        "b": [1, 2]\n      }\n    },' in text


def test_a_baseline_without_a_deployment_has_no_deployment_line(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    write_baseline(tmp_path / "b.json", NODEID, make_measurement([2.0] * 5), fingerprint)
    assert "deployment" not in json.loads((tmp_path / "b.json").read_text())


def test_trimming_the_histogram_keeps_the_other_extras_and_the_limit_is_inclusive(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    padding = MAX_HISTOGRAM_CHARS - len(json.dumps({"b": ""}))
    at_limit = {"b": "x" * padding}
    assert len(json.dumps(at_limit)) == MAX_HISTOGRAM_CHARS
    for histogram, kept in ((at_limit, True), ({"b": "x" * (padding + 1)}, False)):
        path = tmp_path / "b.json"
        m = make_measurement([2.0] * 5, latency_histogram=histogram, extra={"cache_hit_ratio": 0.5})
        write_baseline(path, NODEID, m, fingerprint)
        loaded = load_baseline(path, NODEID)
        assert loaded is not None
        assert (loaded.measurement.latency_histogram == histogram) is kept
        expected_extra = {"cache_hit_ratio": 0.5} if kept else {"cache_hit_ratio": 0.5,
                                                                "latency_histogram_trimmed": 1.0}
        assert loaded.measurement.extra == expected_extra


# -- reading --------------------------------------------------------------------------------------


def test_a_newer_schema_names_the_readable_ones(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"schema_version": 99, "measurement": {}}')
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(info.value) == (
        f"baseline {path} has schema_version 99, this plugin reads 1, 2; "
        "it was written by a newer pytest-tfserving; upgrade the plugin"
    )


def test_missing_stamps_read_as_empty_and_a_schema_1_file_says_so(
    tmp_path: Path, make_measurement: MakeMeasurement, fingerprint: dict[str, Any]
) -> None:
    path = tmp_path / "b.json"
    write_baseline(path, NODEID, make_measurement([2.0] * 5), fingerprint)
    data = json.loads(path.read_text())
    del data["created"], data["runs"][0]["created"]
    path.write_text(json.dumps(data))
    loaded = load_baseline(path, NODEID)
    assert loaded is not None and loaded.created == "" and loaded.history[0].created == ""
    data["schema_version"] = 1
    del data["runs"]
    path.write_text(json.dumps(data))
    old = load_baseline(path, NODEID)
    assert old is not None and old.schema_version == 1


def test_an_unreadable_path_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.mkdir()
    with pytest.raises(BaselineError, match=rf"^cannot read baseline {re.escape(str(path))}: "):
        load_baseline(path)


# -- the history decision -------------------------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """What ``history_decision`` reads of a verdict."""

    metric: str
    verdict: str
    baseline_runs: int


@dataclass(frozen=True)
class JudgedWithoutRuns:
    """A verdict kind that does not say how many runs it was judged against."""

    metric: str
    verdict: str


def test_history_decision_reasons(make_measurement: MakeMeasurement, fingerprint: dict[str, Any]) -> None:
    old = Baseline(NODEID, make_measurement([2.0] * 6), dict(fingerprint), "t")
    other = {**fingerprint, "server": "tensorflow 2.20.0", "logical_cores": 4,
             "models": {"tiny/fp32": "sha256:def"}}
    differences = compare_fingerprints(fingerprint, other)
    assert len(differences) >= 3
    assert history_decision(old, other, []) == (False, "restarted: " + "; ".join(differences[:2]))

    both = [Judged("rps", "improvement", 3), Judged("p50_ms", "regression", 1)]
    assert history_decision(old, fingerprint, both) == (False, "restarted: significant change in p50_ms, rps")
    assert history_decision(old, fingerprint, [JudgedWithoutRuns("p50_ms", "regression")]) == (
        True, "same deployment, no significant change")


# -- git ------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty",
         "-m", "init")
    return repo


def test_a_ref_must_name_one_commit_and_the_error_quotes_git(repo: Path) -> None:
    for ref in ("nope", "main..main"):  # a range would otherwise read as "no baseline at the ref"
        with pytest.raises(BaselineError) as info:
            read_baseline_from_git(ref, repo, "b.json")
        assert str(info.value) == (
            f"cannot read baselines from git ref {ref!r} in {repo}: fatal: Needed a single revision; "
            "fetch it first (e.g. git fetch origin) or pass an existing ref"
        )


def test_a_path_outside_the_repository_is_an_error(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "b.json"
    with pytest.raises(BaselineError) as info:
        read_baseline_from_git("main", repo, outside)
    assert str(info.value) == f"{outside} is not inside the repository {repo}"


def test_without_git_the_error_says_what_to_do(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    with pytest.raises(BaselineError) as info:
        read_baseline_from_git("main", repo, "b.json")
    assert str(info.value) == "git is not installed; install git or compare against a baseline file"
