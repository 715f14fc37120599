"""``pytest-tfserving init``: what it writes, that it never overwrites, and the workflow it copies."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tfserving.scaffold import FILES, GITIGNORE_LINES, init_repository, main, template_text

REPO = Path(__file__).resolve().parents[3]


def test_init_writes_every_starting_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for relative, template in FILES:
        assert (tmp_path / relative).read_text() == template_text(template)
        assert f"wrote   {relative}" in out
    assert (tmp_path / ".gitignore").read_text().splitlines()[-2:] == list(GITIGNORE_LINES)
    assert "pytest -m perf --update-baselines" in out


def test_starter_conftest_builds_a_seeded_model_and_says_why() -> None:
    conftest = template_text("conftest.py.txt")
    ast.parse(conftest)
    ast.parse(template_text("test_tfserving_perf.py.txt"))
    seed = conftest.index("keras.utils.set_random_seed(0)")
    assert conftest.index("keras.Input(") > seed  # seeded before any weight is created
    assert "identity" in conftest and "history restarts" in conftest
    assert "import keras" not in conftest.split("def served_model")[0]  # no TensorFlow at collection


def test_second_init_leaves_edited_files_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    init_repository(tmp_path)
    conftest = tmp_path / "tests/perf/conftest.py"
    conftest.write_text("# mine now\n")
    (tmp_path / ".github/workflows/perf.yml").unlink()
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    assert main(["init", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped tests/perf/conftest.py  (exists; left as it is)" in out
    assert "wrote   .github/workflows/perf.yml" in out  # only what was missing
    assert "kept    .gitignore" in out
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert conftest.read_text() == "# mine now\n"
    assert {p: b for p, b in after.items() if p.name != "perf.yml"} == before


def test_gitignore_gets_only_the_lines_it_lacks(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("venv/\n.tfserving-cache")  # no slash, no final newline
    actions = {a.path: a for a in init_repository(tmp_path)}
    assert actions[".gitignore"].detail == "reports/"
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["venv/", ".tfserving-cache"]
    assert lines.count("reports/") == 1 and ".tfserving-cache/" not in lines


def test_existing_symlink_is_not_followed_or_replaced(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_text("# not ours\n")
    (tmp_path / "tests/perf").mkdir(parents=True)
    (tmp_path / "tests/perf/conftest.py").symlink_to(elsewhere)
    actions = {a.path: a.verb for a in init_repository(tmp_path)}
    assert actions["tests/perf/conftest.py"] == "skipped"
    assert elsewhere.read_text() == "# not ours\n"


def test_missing_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "nope")]) == 1
    assert "is not a directory" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


def test_workflow_is_this_repositorys_own_but_for_the_install_and_paths() -> None:
    """The starter workflow follows .github/workflows/perf.yml: a change there must reach it."""
    ours = (REPO / ".github/workflows/perf.yml").read_text().splitlines()
    starter = template_text("perf.yml.txt").splitlines()
    assert [line for line in ours if line not in starter] == [
        "# Example: gate pull requests on performance, on self-hosted GPU runners with Docker.",
        '# branch with "allow_gate_changes" (docs/GATE.md, "A PR cannot loosen its gate").',
        "# between the recording and the PR cannot pass for a regression or hide one (docs/GATE.md).",
        '# run that does neither (docs/GATE.md, "Skipped is passing").',
        "          python -m pip install -e '.[tf,gpu,plots,shard]'",
        "          python -m pytest perf_suites -m perf",
        "          python -m pip install -e .",  # the merge job: the light install
    ]
    assert '          python -m pip install "$PYTEST_TFSERVING"' in starter
    assert '          python -m pip install "$PYTEST_TFSERVING_LIGHT"' in starter
    assert "          python -m pytest -m perf" in starter


def test_module_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_tfserving", "init", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "tests/perf/test_tfserving_perf.py").is_file()
    usage = subprocess.run(
        [sys.executable, "-m", "pytest_tfserving"], capture_output=True, text=True, check=False, timeout=60
    )
    assert usage.returncode == 2 and "{init}" in usage.stderr
