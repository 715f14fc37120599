"""A build-once directory cache: crash-safe (temp dir + rename) and safe across processes (fcntl).

Model variants take seconds to minutes to build and are shared by test sessions and by pytest-xdist
workers, so a half-written entry or two writers racing on one entry would poison every later run.
An entry either exists complete (it was renamed into place as a whole) or does not exist.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_TMP_PREFIX = ".tmp-"
_LOCK_DIR = ".locks"


@dataclass(frozen=True)
class CacheHit:
    """Where an entry lives and whether this call built it (False: an earlier build was reused)."""

    path: Path
    built: bool


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Held until the block ends; the kernel drops it if the process dies, so no stale locks."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale_temps(cache_dir: Path, entry: str) -> None:
    # Only called under the entry's lock: no live builder owns these, they are leftovers of a crash.
    for stale in cache_dir.glob(f"{_TMP_PREFIX}{entry}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def cached_build(cache_dir: Path, entry: str, build: Callable[[Path], None]) -> CacheHit:
    """Return ``cache_dir/entry``, calling ``build(tmp_dir)`` to fill it if it is not there yet.

    ``build`` writes into an empty temporary directory; on success the directory is renamed to the
    entry, on any failure (or a killed process) nothing appears under the entry's name.
    """
    if "/" in entry or entry.startswith("."):
        raise ValueError(f"cache entry name {entry!r} must be a plain name")
    cache_dir = Path(cache_dir)
    final = cache_dir / entry
    if final.is_dir():
        return CacheHit(final, built=False)
    with _exclusive_lock(cache_dir / _LOCK_DIR / f"{entry}.lock"):
        if final.is_dir():  # another process finished it while we waited for the lock
            return CacheHit(final, built=False)
        _remove_stale_temps(cache_dir, entry)
        tmp = cache_dir / f"{_TMP_PREFIX}{entry}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            _fsync_tree(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(cache_dir)
    return CacheHit(final, built=True)


def _fsync_tree(root: Path) -> None:
    """Flush file contents before the rename publishes them (a power cut must not publish zeros)."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
