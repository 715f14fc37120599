"""What goes into the stand-in images, and the content hashes that name them.

Every input of an image (base recipe, locked dependency list, our package's files, the scripts and
image settings below) feeds its tag, so a build is skipped exactly when an image for the same inputs
exists, and a changed input can never reuse a stale image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pytest_tfserving.images.lock import LOCK_FILE, read_lock

RECIPE_VERSION = "1"  # bump when the build steps change in a way the strings below do not show

SERVER_REPOSITORY = "localhost/tfserving-standin"
REDIS_REPOSITORY = "localhost/redis-standin"
BASE_REPOSITORY = "localhost/pytest-tfserving-base"
DEPS_REPOSITORY = "localhost/pytest-tfserving-deps"

# Debian base shared by all images: Python for the server's venv, redis-server for the Redis image.
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES: tuple[str, ...] = ("python3", "python3-venv", "redis-server")

VENV = "/opt/venv"

# Same contract as tensorflow/serving's /usr/bin/tf_serving_entrypoint.sh (plus exec, so that
# `docker stop` reaches the server instead of a shell that ignores SIGTERM as PID 1).
TF_SERVING_ENTRYPOINT = """#!/bin/bash
exec tensorflow_model_server --port=8500 --rest_api_port=8501 \
--model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"
"""

# The embedded server listens on 127.0.0.1 unless told otherwise; in a container that would make the
# published ports unreachable, and tensorflow_model_server listens on all interfaces, so the stand-in
# binary passes --bind_address=0.0.0.0 (before "$@": a caller's own --bind_address wins).
MODEL_SERVER_SCRIPT = f"""#!/bin/sh
# Stand-in for TF Serving's binary: pytest-tfserving's embedded, TF-Serving-compatible server.
exec {VENV}/bin/python -m pytest_tfserving.embedded --bind_address=0.0.0.0 "$@"
"""

SERVER_CHANGES: tuple[str, ...] = (
    f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV MODEL_NAME=model",
    "ENV MODEL_BASE_PATH=/models",
    "EXPOSE 8500",
    "EXPOSE 8501",
    'ENTRYPOINT ["/usr/bin/tf_serving_entrypoint.sh"]',
    "CMD []",
)

# Like the official redis image: bare flags go to redis-server, and without a config file
# protected mode is off so that published ports work.
REDIS_ENTRYPOINT = """#!/bin/sh
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
"""

REDIS_CHANGES: tuple[str, ...] = (
    "EXPOSE 6379",
    "WORKDIR /data",
    'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
    'CMD ["redis-server"]',
)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../pytest_tfserving
PROJECT_DIR = PACKAGE_DIR.parent
PROJECT_FILES: tuple[str, ...] = ("pyproject.toml", "README.md")


@dataclass(frozen=True)
class ImageRefs:
    base: str
    deps: str
    server: str
    redis: str


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:16]


def package_files() -> list[Path]:
    """The files of our package that are copied into the server image (sorted, no caches)."""
    files = [
        p
        for p in PACKAGE_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    ]
    files += [PROJECT_DIR / name for name in PROJECT_FILES if (PROJECT_DIR / name).is_file()]
    return sorted(files)


def base_recipe() -> str:
    return json.dumps(
        {"v": RECIPE_VERSION, "suite": DEBIAN_SUITE, "mirror": DEBIAN_MIRROR, "pkgs": DEBIAN_PACKAGES}
    )


def image_refs(lock_file: Path = LOCK_FILE) -> ImageRefs:
    """The references the current inputs build to (cheap: hashes files, asks no engine)."""
    base_tag = _digest(base_recipe())
    deps_tag = _digest(base_tag, VENV, *read_lock(lock_file))
    sources = [
        part for path in package_files() for part in (str(path.relative_to(PROJECT_DIR)), path.read_bytes())
    ]
    server_tag = _digest(deps_tag, TF_SERVING_ENTRYPOINT, MODEL_SERVER_SCRIPT, *SERVER_CHANGES, *sources)
    redis_tag = _digest(base_tag, REDIS_ENTRYPOINT, *REDIS_CHANGES)
    return ImageRefs(
        base=f"{BASE_REPOSITORY}:{base_tag}",
        deps=f"{DEPS_REPOSITORY}:{deps_tag}",
        server=f"{SERVER_REPOSITORY}:{server_tag}",
        redis=f"{REDIS_REPOSITORY}:{redis_tag}",
    )
