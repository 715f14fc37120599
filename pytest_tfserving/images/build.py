"""Build the stand-in images (Debian base -> locked deps -> our server; base -> Redis), skipping
every step whose content-hashed image already exists."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_tfserving.images import engine, recipe
from pytest_tfserving.images.lock import LOCK_FILE, read_lock
from pytest_tfserving.images.rootfs import base_tarball

CACHE_ENV = "PYTEST_TFSERVING_IMAGE_CACHE"
WHEELHOUSE_ENV = "PYTEST_TFSERVING_WHEELHOUSE"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pytest-tfserving" / "images"
    return Path(os.environ.get(CACHE_ENV, default))


@contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """One build at a time per cache (parallel pytest workers, two shells)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _step(log: Callable[[str], None], name: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = fn()
    log(f"  {name}: {time.perf_counter() - start:.1f} s")
    return result


def _platform_args() -> list[str]:
    """Every manylinux tag Debian bookworm (glibc 2.36) accepts; pip does not expand one tag itself."""
    arch = platform.machine()
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 4, -1)]
    tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def download_wheels(wheelhouse: Path, lock_file: Path = LOCK_FILE) -> None:
    """Fetch the locked wheels for the image's Python (Debian's 3.11) with the host's pip settings,
    so the build container needs no network; a wheelhouse already holding them is reused as is."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
        *_platform_args(), "-d", str(wheelhouse), "-r", str(lock_file),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise engine.EngineError(
            f"pip download of the locked wheels failed:\n{proc.stderr[-4000:]}\nfix the index access, or "
            f"fill {wheelhouse} (or ${WHEELHOUSE_ENV}) with the wheels of {lock_file}"
        )


def _stage_server(staging: Path) -> None:
    """Our package's files plus the two entrypoint scripts, as the server build step reads them."""
    project = staging / "project"
    for path in recipe.package_files():
        target = project / path.relative_to(recipe.PROJECT_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    if not (project / "README.md").exists():
        (project / "README.md").write_text("pytest-tfserving\n")
    (staging / "tf_serving_entrypoint.sh").write_text(recipe.TF_SERVING_ENTRYPOINT)
    (staging / "tensorflow_model_server").write_text(recipe.MODEL_SERVER_SCRIPT)


DEPS_SCRIPT = f"""
python3 -m venv {recipe.VENV}
{recipe.VENV}/bin/pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps \
    --find-links /wheels -r /lock/runtime-lock.txt
{recipe.VENV}/bin/pip check
"""

SERVER_SCRIPT = f"""
cp -r /src/project /tmp/project
{recipe.VENV}/bin/pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps \
    --no-build-isolation /tmp/project
rm -rf /tmp/project /root/.cache
install -m 0755 /src/tf_serving_entrypoint.sh /usr/bin/tf_serving_entrypoint.sh
install -m 0755 /src/tensorflow_model_server /usr/bin/tensorflow_model_server
{recipe.VENV}/bin/python -c 'import pytest_tfserving.embedded'
"""

REDIS_SCRIPT = """
install -m 0755 /src/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
mkdir -p /data
redis-server --version
"""


def build(log: Callable[[str], None] = print, force: bool = False) -> recipe.ImageRefs:
    """Make sure the server and Redis stand-in images exist; returns their references."""
    refs = recipe.image_refs()
    client = engine.connect()
    total = time.perf_counter()
    if not force and engine.image_exists(client, refs.server) and engine.image_exists(client, refs.redis):
        log(f"up to date: {refs.server} {refs.redis} ({time.perf_counter() - total:.1f} s)")
        return refs
    cache = cache_dir()
    with _build_lock(cache), tempfile.TemporaryDirectory(prefix="pytest-tfserving-img-") as tmp:
        staging = Path(tmp)

        def needed(ref: str) -> bool:
            return force or not engine.image_exists(client, ref)

        if needed(refs.base):
            tag = refs.base.rpartition(":")[2]
            tar = _step(log, "debian base rootfs", lambda: base_tarball(cache, tag))
            _step(log, f"import {refs.base}", lambda: engine.import_tarball(client, tar, refs.base))
        if needed(refs.redis):
            src = staging / "redis"
            src.mkdir()
            (src / "docker-entrypoint.sh").write_text(recipe.REDIS_ENTRYPOINT)
            mounts = {src: "/src"}
            changes = recipe.REDIS_CHANGES
            _step(
                log,
                f"build {refs.redis}",
                lambda: engine.run_and_commit(client, refs.base, REDIS_SCRIPT, mounts, refs.redis, changes),
            )
        if needed(refs.deps):
            wheelhouse = Path(os.environ.get(WHEELHOUSE_ENV, cache / "wheels"))
            read_lock()  # a clear error before any work when the lock is missing
            _step(log, "download locked wheels", lambda: download_wheels(wheelhouse))
            (staging / "lock").mkdir()
            shutil.copy2(LOCK_FILE, staging / "lock" / "runtime-lock.txt")
            mounts = {wheelhouse: "/wheels", staging / "lock": "/lock"}
            _step(
                log,
                f"build {refs.deps}",
                lambda: engine.run_and_commit(client, refs.base, DEPS_SCRIPT, mounts, refs.deps, ()),
            )
        if needed(refs.server):
            src = staging / "server"
            src.mkdir()
            _stage_server(src)
            mounts = {src: "/src"}
            changes = recipe.SERVER_CHANGES
            _step(
                log,
                f"build {refs.server}",
                lambda: engine.run_and_commit(client, refs.deps, SERVER_SCRIPT, mounts, refs.server, changes),
            )
    log(f"built {refs.server} {refs.redis} in {time.perf_counter() - total:.1f} s")
    return refs


def missing_images(client: Any, refs: recipe.ImageRefs | None = None) -> list[str]:
    """The stand-in references (server, redis) that the engine does not have yet."""
    refs = refs or recipe.image_refs()
    return [ref for ref in (refs.server, refs.redis) if not engine.image_exists(client, ref)]


def prune(log: Callable[[str], None] = print) -> list[str]:
    """Remove stand-in images of other inputs (older sources or locks); images in use stay."""
    import docker.errors

    refs = recipe.image_refs()
    keep = {refs.base, refs.deps, refs.server, refs.redis}
    client = engine.connect()
    removed: list[str] = []
    # Newest layers first, so a server image goes before the deps image below it.
    for repository in (recipe.SERVER_REPOSITORY, recipe.REDIS_REPOSITORY, recipe.DEPS_REPOSITORY):
        for image in client.images.list(name=repository):
            for tag in image.tags:
                if tag in keep or not tag.startswith(repository + ":"):
                    continue
                try:
                    client.images.remove(tag)
                except docker.errors.APIError as exc:  # e.g. a running container uses it
                    log(f"kept {tag}: {exc.explanation or exc}")
                    continue
                removed.append(tag)
                log(f"removed {tag}")
    return removed
