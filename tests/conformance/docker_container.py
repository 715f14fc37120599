"""The tensorflow/serving container the conformance tests run, as users run it: the tag the docker
backend pins (``DEFAULT_IMAGE``) with the image's own entrypoint, and why it cannot run here when it
cannot. Pure, so unit tests check it without an engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_tfserving.backends.docker import DEFAULT_IMAGE
from pytest_tfserving.backends.engine import engine_status

DOCKER_IMAGE = DEFAULT_IMAGE  # the pinned tag users get from the docker backend, not a moving "latest"
IMAGE_ENTRYPOINT = "/usr/bin/tf_serving_entrypoint.sh"
"""What the image runs: ``tensorflow_model_server --port=8500 --rest_api_port=8501
--model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"``."""
MODELS_DIR = "/models"


def container_kwargs(
    model_root: Path, model: str, monitoring_file: str, grpc_port: int, rest_port: int
) -> dict[str, Any]:
    """``docker.containers.run`` keywords: no ``entrypoint`` (the image's own runs), the model chosen
    through the entrypoint's environment, only our monitoring flag appended, ports on loopback."""
    return {
        "image": DOCKER_IMAGE,
        "command": [f"--monitoring_config_file={MODELS_DIR}/{monitoring_file}"],
        "environment": {"MODEL_NAME": model, "MODEL_BASE_PATH": MODELS_DIR},
        "volumes": {str(model_root): {"bind": MODELS_DIR, "mode": "ro"}},
        "ports": {"8500/tcp": ("127.0.0.1", grpc_port), "8501/tcp": ("127.0.0.1", rest_port)},
        "detach": True,
        "remove": True,
    }


def unavailable_reason(client: Any | None, engine_detail: str) -> str | None:
    """Why the container cannot run here (None: it can). ``client`` is a docker client whose engine
    answered, or None with ``engine_detail`` saying why not. The image is never pulled by the tests."""
    if client is None:
        return (
            f"docker conformance needs a Docker-compatible engine, but {engine_detail}; start one (or "
            f"Podman's socket with DOCKER_HOST) and `docker pull {DOCKER_IMAGE}` to run against the "
            "pinned image with its own entrypoint"
        )
    try:
        client.images.get(DOCKER_IMAGE)
    except Exception as exc:  # docker.errors.ImageNotFound, or an engine error while asking
        why = "is not present" if type(exc).__name__ == "ImageNotFound" else f"cannot be listed ({exc})"
        return (
            f"image {DOCKER_IMAGE} {why} on the engine and the tests never pull it; run "
            f"`docker pull {DOCKER_IMAGE}` (the tag the docker backend pins)"
        )
    return None


def docker_client() -> tuple[Any | None, str]:
    """A client of the engine that answers, or None and why none answered (engine.engine_status)."""
    answered, detail = engine_status()
    if not answered:
        return None, detail
    import docker

    return docker.from_env(), detail
