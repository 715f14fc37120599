"""Which backend runs the server: explicit choice, or ``auto`` (docker > binary > embedded) with a reason.

The reason string goes into the pytest header so a reader knows why this run used, say, the embedded
server (and can tell numbers from different backends apart).
"""

from __future__ import annotations

from pytest_tfserving.backends.base import Backend, BackendError
from pytest_tfserving.backends.binary import DEFAULT_BINARY, BinaryBackend, find_binary
from pytest_tfserving.backends.docker import DockerBackend
from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.backends.engine import engine_status, image_status, no_engine_error
from pytest_tfserving.backends.external import ExternalBackend

BACKENDS: tuple[str, ...] = ("auto", "docker", "binary", "embedded", "external")


def select_backend(
    requested: str,
    *,
    image: str | None,
    binary: str | None,
    gpus: str | None = None,
    external_grpc: str | None = None,
    external_rest: str | None = None,
    engine_timeout_s: float = 3.0,
) -> tuple[Backend, str]:
    """The backend for ``requested`` and a one-line reason, e.g. "docker: engine at unix:///... answered".

    ``auto`` picks docker when an engine answers and the image is present or pullable, else the binary
    when installed, else embedded. Explicit choices that cannot work raise BackendError naming the fix.
    """
    choice = (requested or "auto").strip().lower()
    if choice not in BACKENDS:
        raise BackendError(f"unknown backend {requested!r}; choose one of: {', '.join(BACKENDS)}")
    if choice == "embedded":
        return EmbeddedBackend(), "embedded: requested"
    if choice == "external":
        backend = ExternalBackend(external_grpc or "", external_rest or "")
        return backend, f"external: {backend.rest_url} (gRPC {backend.grpc_target})"
    if choice == "binary":
        chosen = BinaryBackend(binary)
        return chosen, f"binary: {chosen.binary} requested"
    if choice == "docker":
        docker_backend = DockerBackend(image=image, gpus=gpus)
        answered, detail = engine_status(engine_timeout_s)
        if not answered:
            raise no_engine_error(detail)
        return docker_backend, f"docker: {docker_backend.image}, {detail}"

    # auto
    docker_backend = DockerBackend(image=image, gpus=gpus)
    answered, detail = engine_status(engine_timeout_s)
    if answered:
        usable, image_detail = image_status(docker_backend.image)
        if usable:
            return docker_backend, f"docker: {detail}, {image_detail}"
        docker_why = f"docker engine answered but {image_detail}"
    else:
        docker_why = detail
    path = find_binary(binary)
    if path is not None:
        return BinaryBackend(path), f"binary: {path} ({docker_why})"
    wanted = binary or DEFAULT_BINARY
    where = "at that path" if binary and "/" in binary else "on PATH"
    return EmbeddedBackend(), f"embedded: {docker_why} and no {wanted} {where}"
