"""Image references are content hashes of exactly their inputs; these need no engine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tfserving.images import recipe
from pytest_tfserving.images.engine import EngineError, connect
from pytest_tfserving.images.lock import LOCK_FILE, read_lock, render_lock, runtime_closure


@pytest.fixture()
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package the recipe hashes instead of the live (shared, changing) tree."""
    project = tmp_path / "project"
    shutil.copytree(
        recipe.PACKAGE_DIR, project / "pytest_tfserving", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(recipe.PROJECT_DIR / "pyproject.toml", project / "pyproject.toml")
    monkeypatch.setattr(recipe, "PACKAGE_DIR", project / "pytest_tfserving")
    monkeypatch.setattr(recipe, "PROJECT_DIR", project)
    return project


def test_refs_are_stable_and_name_the_standin_repositories(project_copy: Path) -> None:
    first, second = recipe.image_refs(), recipe.image_refs()
    assert first == second
    assert first.server.startswith("localhost/tfserving-standin:")
    assert first.redis.startswith("localhost/redis-standin:")


def test_a_source_change_retags_only_the_server(project_copy: Path) -> None:
    before = recipe.image_refs()
    (project_copy / "pytest_tfserving" / "embedded" / "__init__.py").write_text('"""changed"""\n')
    after = recipe.image_refs()
    assert after.server != before.server
    assert (after.base, after.deps, after.redis) == (before.base, before.deps, before.redis)
    (project_copy / "pytest_tfserving" / "embedded" / "__pycache__").mkdir(exist_ok=True)
    (project_copy / "pytest_tfserving" / "embedded" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert recipe.image_refs() == after  # bytecode caches are not inputs


def test_a_lock_change_retags_deps_and_server_not_redis(project_copy: Path, tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text(LOCK_FILE.read_text())
    before = recipe.image_refs(lock)
    lock.write_text(LOCK_FILE.read_text().replace("numpy==", "numpy==0.0.0+"))
    after = recipe.image_refs(lock)
    assert after.deps != before.deps and after.server != before.server
    assert after.redis == before.redis


def test_lock_is_current_for_this_environment() -> None:
    """The image must run the TensorFlow/gRPC/protobuf this environment runs; re-lock after upgrades."""
    from importlib import metadata

    pins = runtime_closure()
    assert pins["tensorflow"] == metadata.version("tensorflow")
    assert "pytest" not in pins and "testcontainers" not in pins
    assert read_lock() == [line for line in render_lock(pins).splitlines() if not line.startswith("#")], (
        "runtime-lock.txt is stale: python -m pytest_tfserving.images lock"
    )


def test_tag_command_needs_no_engine(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no.sock", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest_tfserving.images", "tag", "server", "--tag-only"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert len(out.stdout.strip()) == 16


def test_no_engine_error_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with pytest.raises(EngineError, match=r"scripts/container-engine.sh"):
        connect(timeout_s=2)
