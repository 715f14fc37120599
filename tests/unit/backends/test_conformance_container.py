"""The docker conformance run uses the tag the docker backend pins and the image's own entrypoint, and
says precisely why it cannot run where no engine or image is (no engine here: unit-tested, not run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.backends.docker import DEFAULT_IMAGE, container_definition
from pytest_tfserving.backends.engine import engine_status
from pytest_tfserving.serving.spec import ServerSpec
from tests.conformance.docker_container import (
    DOCKER_IMAGE,
    container_kwargs,
    docker_client,
    unavailable_reason,
)


def test_the_pinned_image_runs_with_its_own_entrypoint(tmp_path: Path) -> None:
    kwargs = container_kwargs(tmp_path, "tiny", "monitoring.config", 18500, 18501)
    assert kwargs["image"] == DOCKER_IMAGE == DEFAULT_IMAGE == "tensorflow/serving:2.19.1"
    assert "entrypoint" not in kwargs  # tf_serving_entrypoint.sh runs, as for users
    # The entrypoint sets port, REST port, model name and path from these; we add only monitoring.
    assert kwargs["environment"] == {"MODEL_NAME": "tiny", "MODEL_BASE_PATH": "/models"}
    assert kwargs["command"] == ["--monitoring_config_file=/models/monitoring.config"]
    assert kwargs["volumes"] == {str(tmp_path): {"bind": "/models", "mode": "ro"}}
    assert kwargs["ports"] == {"8500/tcp": ("127.0.0.1", 18500), "8501/tcp": ("127.0.0.1", 18501)}


def test_the_docker_backend_also_keeps_the_entrypoint_and_pins_the_tag(tmp_path: Path) -> None:
    definition = container_definition(ServerSpec.single("tiny", tmp_path), host_config_dir=tmp_path / "c")
    assert definition.image == DEFAULT_IMAGE
    assert "entrypoint" not in type(definition).__dataclass_fields__  # flags follow the image's entrypoint
    assert all(flag.startswith("--") for flag in definition.command)


def test_no_engine_names_the_engine_the_fix_and_the_image() -> None:
    reason = unavailable_reason(None, "no docker engine at unix:///var/run/docker.sock (FileNotFoundError)")
    assert reason is not None
    assert "no docker engine at unix:///var/run/docker.sock (FileNotFoundError)" in reason
    assert f"docker pull {DOCKER_IMAGE}" in reason and "own entrypoint" in reason


class _Images:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, name: str) -> Any:
        if self.error is not None:
            raise self.error
        return name


class _Client:
    def __init__(self, error: Exception | None) -> None:
        self.images = _Images(error)


class ImageNotFound(Exception):
    """Named as docker.errors.ImageNotFound, which needs docker-py's response object to build."""


def test_a_missing_image_is_not_pulled_and_the_reason_says_so() -> None:
    reason = unavailable_reason(_Client(ImageNotFound("404")), "engine answered")
    assert reason == (
        f"image {DOCKER_IMAGE} is not present on the engine and the tests never pull it; run "
        f"`docker pull {DOCKER_IMAGE}` (the tag the docker backend pins)"
    )
    broken = unavailable_reason(_Client(RuntimeError("500 Server Error")), "engine answered")
    assert broken is not None and "cannot be listed (500 Server Error)" in broken
    assert unavailable_reason(_Client(None), "engine answered") is None


def test_here_the_skip_reason_is_the_engines_own() -> None:
    answered, detail = engine_status()
    if answered:
        pytest.skip("an engine answers here; this checks the reason where none does")
    client, why = docker_client()
    assert client is None and why == detail
    reason = unavailable_reason(client, why)
    assert reason is not None and detail in reason
