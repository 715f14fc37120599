"""The exact dependency versions the stand-in server image installs.

The image must run the same TensorFlow, gRPC and protobuf as the environment that built it, so the
lock is the runtime requirement closure of our server read from the installed distributions, pinned
with ``==``. It is kept in ``runtime-lock.txt`` (part of the image tag hash) and regenerated with
``python -m pytest_tfserving.images lock``.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

LOCK_FILE = Path(__file__).with_name("runtime-lock.txt")

# What the embedded server imports at runtime (not pytest, testcontainers or the load generators).
RUNTIME_ROOTS: tuple[str, ...] = (
    "tensorflow",
    "tensorflow-serving-api",
    "ai-edge-litert",
    "grpcio",
    "protobuf",
    "numpy",
    "aiohttp",
    "psutil",
)


class LockError(RuntimeError):
    """The lock cannot be computed or read; the message names the fix."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(roots: tuple[str, ...] = RUNTIME_ROOTS) -> dict[str, str]:
    """Return {distribution name: installed version} for ``roots`` and everything they require."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env["extra"] = ""
    found: dict[str, str] = {}
    pending = [_canonical(r) for r in roots]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise LockError(
                f"{name} is not installed in this environment; install the project's dependencies "
                "(pip install -e '.[tf]') before locking the image"
            ) from exc
        found[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            pending.append(_canonical(req.name))
    return dict(sorted(found.items()))


def render_lock(pins: dict[str, str]) -> str:
    header = (
        "# Runtime dependencies of the stand-in TF Serving image, pinned to the versions of the\n"
        "# environment that generated it. Regenerate: python -m pytest_tfserving.images lock\n"
    )
    return header + "".join(f"{name}=={version}\n" for name, version in pins.items())


def write_lock(path: Path = LOCK_FILE) -> Path:
    path.write_text(render_lock(runtime_closure()))
    return path


def read_lock(path: Path = LOCK_FILE) -> list[str]:
    """The pinned requirement lines of the lock file."""
    if not path.is_file():
        raise LockError(f"{path} is missing; create it with: python -m pytest_tfserving.images lock")
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]
