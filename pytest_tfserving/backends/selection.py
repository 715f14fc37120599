"""Which backend runs the server: explicit choice, or ``auto`` (docker > binary > embedded) with a reason.

The reason string goes into the pytest header so a reader knows why this run used, say, the embedded
server (and can tell numbers from different backends apart).
"""

from __future__ import annotations

from pathlib import Path

from pytest_tfserving.backends.base import Backend, BackendError, RunningServer
from pytest_tfserving.backends.binary import DEFAULT_BINARY, BinaryBackend, find_binary
from pytest_tfserving.backends.docker import DockerBackend, parse_gpus
from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.backends.engine import engine_status, image_status, no_engine_error
from pytest_tfserving.backends.external import ExternalBackend
from pytest_tfserving.serving.gpu_share import local_gpu_visible
from pytest_tfserving.serving.spec import ServerSpec
from pytest_tfserving.tf_extra import EMBEDDED_SERVER_MODULES, tf_extra_problem

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
        _require_embedded_server()
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
    why = f"{docker_why} and no {wanted} {where}"
    problem = _embedded_server_problem()
    if problem is not None:
        reason = f"auto found no server to start: {why}; the embedded backend would be next, but {problem}"
        return NoUsableBackend(reason), f"unavailable: {reason}"
    return EmbeddedBackend(), f"embedded: {why}"


def serves_on_gpu(backend: Backend) -> bool:
    """Whether servers this backend starts run on a GPU: docker when given ``--gpus``; the binary and
    the embedded server when this host shows an NVIDIA GPU; never an external server (not ours)."""
    if isinstance(backend, DockerBackend):
        return parse_gpus(backend.gpus) is not None
    if isinstance(backend, (BinaryBackend, EmbeddedBackend)):
        return local_gpu_visible()
    return False


class NoUsableBackend:
    """What ``auto`` picks when nothing here can serve (light install, no engine, no binary): the session
    still runs, so tests that start no server pass, and the first server asked for fails with the fix."""

    name = "unavailable"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def start(self, spec: ServerSpec, workdir: Path, startup_timeout_s: float) -> RunningServer:
        raise BackendError(f"no backend can start a TF Serving server here: {self.reason}")


def _embedded_server_problem() -> str | None:
    """Why the embedded server cannot run in this environment (it imports TensorFlow), with the fix."""
    problem = tf_extra_problem("the embedded backend", EMBEDDED_SERVER_MODULES)
    if problem is None:
        return None
    return (
        f"{problem}; or serve elsewhere: --tfserving-backend=docker, binary, or external with "
        "--tfserving-target and --tfserving-rest-url"
    )


def _require_embedded_server() -> None:
    """Explicitly asked for: a usage error before any test, not a failed server start in the first one."""
    problem = _embedded_server_problem()
    if problem is not None:
        raise BackendError(problem)
