"""The few engine operations an image build needs, over the Docker API (Docker or Podman's service).

Only API calls that Podman 4.3's Docker-compatible service handles are used: import from a tarball
(its ``tag`` parameter is ignored there, so the full reference goes in ``repository``), create/start/
wait a container, and commit it with Dockerfile-style ``changes``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENGINE_HINT = (
    'start one with: eval "$(scripts/container-engine.sh)" (Podman\'s Docker API, as root on Debian), '
    "or point DOCKER_HOST at a running Docker/Podman socket"
)


class EngineError(RuntimeError):
    """No engine answers, or an engine step failed; the message carries the log and the fix."""


def connect(timeout_s: float = 900.0) -> Any:
    """A docker-py client for DOCKER_HOST (or the default socket) that has answered a ping."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a declared dependency
        raise EngineError("the docker package is missing: pip install docker") from exc
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except Exception as exc:
        raise EngineError(f"no container engine answers at {where}: {exc}; {ENGINE_HINT}") from exc
    return client


def image_exists(client: Any, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def import_tarball(client: Any, tarball: Path, ref: str) -> None:
    """``docker import`` of a root filesystem tarball as ``ref`` (repository:tag)."""
    client.api.import_image(src=str(tarball), repository=ref)
    if not image_exists(client, ref):
        raise EngineError(f"importing {tarball} did not create {ref}; check the engine's log")


def run_and_commit(
    client: Any,
    base: str,
    script: str,
    mounts: dict[Path, str],
    ref: str,
    changes: Sequence[str],
) -> None:
    """Run ``script`` (sh -c) in a container of ``base`` with read-only ``mounts`` and no network,
    then commit its filesystem as ``ref`` with ``changes``; the container is always removed."""
    repository, _, tag = ref.rpartition(":")
    volumes = {str(host): {"bind": inside, "mode": "ro"} for host, inside in mounts.items()}
    container = client.containers.create(
        base,
        ["/bin/sh", "-ec", script],
        entrypoint=[],
        volumes=volumes,
        network_mode="none",
        name=f"pytest-tfserving-build-{uuid.uuid4().hex[:8]}",
    )
    try:
        container.start()
        status = container.wait()
        if status.get("StatusCode") != 0:
            log = container.logs().decode(errors="replace")[-6000:]
            raise EngineError(f"building {ref} failed (exit {status.get('StatusCode')}):\n{log}")
        container.commit(repository=repository, tag=tag, changes=list(changes))
    finally:
        container.remove(force=True)
    if not image_exists(client, ref):
        raise EngineError(f"committing the build container did not create {ref}")
