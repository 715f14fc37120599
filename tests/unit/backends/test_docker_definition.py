"""The docker container definition, checked without an engine: image, flags, mounts, ports, GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tfserving.backends.docker import (
    DEFAULT_IMAGE,
    DEFAULT_TAG,
    GpuRequest,
    apply_definition,
    container_definition,
    parse_gpus,
    resolve_image,
)
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec


def _spec(tmp_path: Path, **kwargs: object) -> ServerSpec:
    models = (
        ModelSpec("tiny", tmp_path / "models" / "tiny"),
        ModelSpec("other", tmp_path / "models" / "other"),
    )
    return ServerSpec(models=models, **kwargs)  # type: ignore[arg-type]


def test_default_image_is_pinned_and_cpu(tmp_path: Path) -> None:
    d = container_definition(_spec(tmp_path), host_config_dir=tmp_path / "cfg")
    assert d.image == f"tensorflow/serving:{DEFAULT_TAG}"
    assert d.image == DEFAULT_IMAGE
    assert not d.image.endswith(":latest")
    assert DEFAULT_TAG[0].isdigit()


def test_gpu_request_selects_gpu_tag(tmp_path: Path) -> None:
    d = container_definition(_spec(tmp_path), gpus="all", host_config_dir=tmp_path / "cfg")
    assert d.image == f"tensorflow/serving:{DEFAULT_TAG}-gpu"


@pytest.mark.parametrize(
    ("image", "gpu", "expected"),
    [
        (None, False, f"tensorflow/serving:{DEFAULT_TAG}"),
        ("tensorflow/serving", True, f"tensorflow/serving:{DEFAULT_TAG}-gpu"),
        ("registry.local:5000/serving", False, f"registry.local:5000/serving:{DEFAULT_TAG}"),
        ("registry.local:5000/serving:2.18.0", False, "registry.local:5000/serving:2.18.0"),
        ("tensorflow/serving:2.18.0-gpu", True, "tensorflow/serving:2.18.0-gpu"),
        ("tensorflow/serving:2.18.0", True, "tensorflow/serving:2.18.0-gpu"),
        ("tensorflow/serving:2.18.0-gpu", False, "tensorflow/serving:2.18.0-gpu"),
        ("tensorflow/serving@sha256:" + "a" * 64, True, "tensorflow/serving@sha256:" + "a" * 64),
    ],
)
def test_image_override(image: str | None, gpu: bool, expected: str) -> None:
    assert resolve_image(image, gpu) == expected


def test_latest_tag_refused_with_pinned_suggestion() -> None:
    with pytest.raises(ValueError, match=rf"pin a version, e.g. tensorflow/serving:{DEFAULT_TAG}"):
        resolve_image("tensorflow/serving:latest", False)


def test_command_is_rendered_flags_with_container_paths(tmp_path: Path) -> None:
    d = container_definition(_spec(tmp_path, intra_op=4, inter_op=2), host_config_dir=tmp_path / "cfg")
    assert "--port=8500" in d.command
    assert "--rest_api_port=8501" in d.command
    assert "--model_config_file=/config/models.config" in d.command
    assert "--tensorflow_intra_op_parallelism=4" in d.command
    assert "--tensorflow_inter_op_parallelism=2" in d.command
    # the model config points at the container-side mounts, never at host paths
    models_config = d.files["models.config"]
    assert "/models/tiny" in models_config and "/models/other" in models_config
    assert str(tmp_path) not in models_config


def test_mounts_are_read_only_config_and_each_model(tmp_path: Path) -> None:
    d = container_definition(_spec(tmp_path), host_config_dir=tmp_path / "cfg")
    mounts = {(v.host, v.container, v.mode) for v in d.volumes}
    assert mounts == {
        (str((tmp_path / "cfg").resolve()), "/config", "ro"),
        (str((tmp_path / "models" / "tiny").resolve()), "/models/tiny", "ro"),
        (str((tmp_path / "models" / "other").resolve()), "/models/other", "ro"),
    }


def test_models_sharing_a_directory_share_one_mount(tmp_path: Path) -> None:
    shared = tmp_path / "models" / "tiny"
    spec = ServerSpec(models=(ModelSpec("a", shared), ModelSpec("b", shared)))
    d = container_definition(spec, host_config_dir=tmp_path / "cfg")
    model_volumes = [v for v in d.volumes if v.container.startswith("/models/")]
    assert len(model_volumes) == 1
    assert d.files["models.config"].count("/models/a") == 2


def test_ports_published_on_loopback_only(tmp_path: Path) -> None:
    d = container_definition(_spec(tmp_path), host_config_dir=tmp_path / "cfg")
    assert dict(d.ports) == {"8500/tcp": ("127.0.0.1", None), "8501/tcp": ("127.0.0.1", None)}


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        ("all", GpuRequest(count=-1)),
        ("2", GpuRequest(count=2)),
        ("0,1", GpuRequest(device_ids=("0", "1"))),
        ("device=0,1", GpuRequest(device_ids=("0", "1"))),
        ('"device=3"', GpuRequest(device_ids=("3",))),
    ],
)
def test_gpu_forms_become_device_requests(tmp_path: Path, gpus: str, expected: GpuRequest) -> None:
    d = container_definition(_spec(tmp_path), gpus=gpus, host_config_dir=tmp_path / "cfg")
    assert d.device_requests == (expected,)
    docker_request = expected.to_docker()
    assert docker_request["Capabilities"] == [["gpu"]]
    assert docker_request["Count"] == (expected.count if expected.count is not None else 0)
    assert docker_request["DeviceIDs"] == list(expected.device_ids)


@pytest.mark.parametrize("gpus", [None, "", "none"])
def test_no_gpu_means_no_device_request(tmp_path: Path, gpus: str | None) -> None:
    d = container_definition(_spec(tmp_path), gpus=gpus, host_config_dir=tmp_path / "cfg")
    assert d.device_requests == ()
    assert not d.image.endswith("-gpu")


@pytest.mark.parametrize("gpus", ["0", "many", "device=", "1,a", "-1"])
def test_bad_gpus_value_names_valid_forms(gpus: str) -> None:
    with pytest.raises(ValueError, match="'all'"):
        parse_gpus(gpus)


def test_environment_passed_through(tmp_path: Path) -> None:
    d = container_definition(
        _spec(tmp_path), host_config_dir=tmp_path / "cfg", environment={"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    )
    assert dict(d.environment) == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def test_apply_definition_configures_testcontainer(tmp_path: Path) -> None:
    """The thin layer maps every field; constructing a DockerContainer talks to no engine."""
    d = container_definition(
        _spec(tmp_path), gpus="0,1", host_config_dir=tmp_path / "cfg", environment={"A": "1"}
    )
    container = apply_definition(d, {"version": "1.41"})  # a fixed API version: no engine round trip
    assert container.image.endswith(d.image)
    assert container._command == list(d.command)
    assert container.env == {"A": "1"}
    assert container.ports == {"8500/tcp": ("127.0.0.1", None), "8501/tcp": ("127.0.0.1", None)}
    assert {h: (m["bind"], m["mode"]) for h, m in container.volumes.items()} == {
        v.host: (v.container, v.mode) for v in d.volumes
    }
    requests = container._kwargs["device_requests"]
    assert [r["DeviceIDs"] for r in requests] == [["0", "1"]]
