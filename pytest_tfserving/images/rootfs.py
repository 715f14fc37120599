"""The Debian root filesystem tarball every stand-in image starts from, built once and cached.

``debootstrap`` needs root and the Debian mirror; CI without either can supply a tarball of its own
(same packages: python3, python3-venv, redis-server) through PYTEST_TFSERVING_BASE_TARBALL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_tfserving.images.recipe import DEBIAN_MIRROR, DEBIAN_PACKAGES, DEBIAN_SUITE

BASE_TARBALL_ENV = "PYTEST_TFSERVING_BASE_TARBALL"


class RootfsError(RuntimeError):
    """The base root filesystem cannot be built; the message names the fix."""


def base_tarball(cache_dir: Path, tag: str) -> Path:
    """Path of the base tarball for ``tag``, building it with debootstrap when it is not cached."""
    supplied = os.environ.get(BASE_TARBALL_ENV)
    if supplied:
        path = Path(supplied)
        if not path.is_file():
            raise RootfsError(f"{BASE_TARBALL_ENV}={supplied} is not a file")
        return path
    target = cache_dir / f"base-{DEBIAN_SUITE}-{tag}.tar"
    if target.is_file():
        return target
    if os.geteuid() != 0:
        raise RootfsError(
            "building the Debian base needs root (debootstrap); run the build as root once, or set "
            f"{BASE_TARBALL_ENV} to a root filesystem tarball with {', '.join(DEBIAN_PACKAGES)}"
        )
    if shutil.which("debootstrap") is None:
        raise RootfsError(
            "debootstrap is missing: apt-get install debootstrap (or run scripts/container-engine.sh)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(rootfs),
            DEBIAN_MIRROR,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-4000:]
            raise RootfsError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = Path(tmp) / "base.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.replace(target)
    return target
