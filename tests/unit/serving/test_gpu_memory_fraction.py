"""ServerSpec.gpu_memory_fraction becomes --per_process_gpu_memory_fraction on the docker command and
on the embedded server's command line, where it reaches the session options; bad shares fail at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tfserving.backends.docker import container_definition
from pytest_tfserving.backends.layout import host_model_path, render_into
from pytest_tfserving.embedded.flags import parse_flags
from pytest_tfserving.embedded.settings import _session_config
from pytest_tfserving.serving.spec import ServerSpec, SpecError

FLAG = "--per_process_gpu_memory_fraction"


def _spec(tmp_path: Path, **settings: object) -> ServerSpec:
    return ServerSpec.single("tiny", tmp_path / "tiny", **settings)


def test_docker_command_carries_the_fraction(tmp_path: Path) -> None:
    definition = container_definition(
        _spec(tmp_path, gpu_memory_fraction=0.45), gpus="all", host_config_dir=tmp_path / "config"
    )
    assert f"{FLAG}=0.45" in definition.command
    unset = container_definition(_spec(tmp_path), gpus="all", host_config_dir=tmp_path / "config")
    assert not any(flag.startswith(FLAG) for flag in unset.command)  # TensorFlow's own default


def test_embedded_command_line_sets_the_session_fraction(tmp_path: Path) -> None:
    flags = render_into(
        _spec(tmp_path, gpu_memory_fraction=0.3),
        grpc_port=0,
        rest_port=0,
        host_config_dir=tmp_path / "config",
        server_config_dir=str(tmp_path / "config"),
        model_path=host_model_path,
    )
    assert f"{FLAG}=0.3" in flags
    session = _session_config(parse_flags(list(flags)))
    assert session.gpu_options.per_process_gpu_memory_fraction == pytest.approx(0.3)


@pytest.mark.parametrize("fraction", [0, 0.0, -0.2, 1.5, True, "0.5"])
def test_a_share_outside_zero_to_one_is_refused(tmp_path: Path, fraction: object) -> None:
    with pytest.raises(SpecError, match=r"gpu_memory_fraction=.*0 < fraction <= 1"):
        _spec(tmp_path, gpu_memory_fraction=fraction).validate()


def test_the_whole_gpu_is_a_valid_share(tmp_path: Path) -> None:
    assert _spec(tmp_path, gpu_memory_fraction=1).validate().gpu_memory_fraction == 1
