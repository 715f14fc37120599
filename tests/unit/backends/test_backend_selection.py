"""select_backend: explicit choices, ``auto`` fallbacks and the reason shown in the pytest header."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pytest_tfserving.backends.base import BackendError
from pytest_tfserving.backends.binary import BinaryBackend
from pytest_tfserving.backends.docker import DockerBackend
from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.backends.external import ExternalBackend
from pytest_tfserving.backends.selection import select_backend


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point docker-py at a socket nobody listens on: the 'no engine here' situation, for real."""
    host = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    return host


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    return bindir


def _executable(path: Path) -> Path:
    """An executable file: selection only checks that the binary exists, it never runs it."""
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_auto_without_engine_or_binary_is_embedded_with_reason(no_engine: str, empty_path: Path) -> None:
    backend, reason = select_backend("auto", image=None, binary=None, engine_timeout_s=1)
    assert isinstance(backend, EmbeddedBackend)
    assert reason.startswith(f"embedded: no docker engine at {no_engine} (FileNotFoundError")
    assert reason.endswith("and no tensorflow_model_server on PATH")


def test_auto_prefers_binary_on_path_over_embedded(no_engine: str, empty_path: Path) -> None:
    server = _executable(empty_path / "tensorflow_model_server")
    backend, reason = select_backend("auto", image=None, binary=None, engine_timeout_s=1)
    assert isinstance(backend, BinaryBackend)
    assert backend.binary == str(server)
    assert reason.startswith(f"binary: {server} (no docker engine")


def test_auto_uses_given_binary_path(no_engine: str, empty_path: Path, tmp_path: Path) -> None:
    server = _executable(tmp_path / "my_model_server")
    backend, reason = select_backend("auto", image=None, binary=str(server), engine_timeout_s=1)
    assert isinstance(backend, BinaryBackend) and backend.binary == str(server)
    missing = tmp_path / "nope"
    backend, reason = select_backend("auto", image=None, binary=str(missing), engine_timeout_s=1)
    assert isinstance(backend, EmbeddedBackend)
    assert reason.endswith(f"no {missing} at that path")


def test_docker_requested_without_engine_names_alternatives(no_engine: str) -> None:
    with pytest.raises(BackendError) as info:
        select_backend("docker", image=None, binary=None, engine_timeout_s=1)
    message = str(info.value)
    assert "--tfserving-backend=embedded|binary|external" in message
    assert "no docker engine" in message
    assert "Traceback" not in message


def test_binary_requested_but_missing_names_the_fix(empty_path: Path) -> None:
    with pytest.raises(BackendError, match=r"tensorflow_model_server.*--tfserving-binary=PATH"):
        select_backend("binary", image=None, binary=None)


def test_explicit_embedded_and_external() -> None:
    backend, reason = select_backend("embedded", image=None, binary=None)
    assert isinstance(backend, EmbeddedBackend) and reason == "embedded: requested"
    backend, reason = select_backend(
        "external", image=None, binary=None, external_grpc="127.0.0.1:8500", external_rest="127.0.0.1:8501/"
    )
    assert isinstance(backend, ExternalBackend)
    assert backend.rest_url == "http://127.0.0.1:8501"
    assert reason == "external: http://127.0.0.1:8501 (gRPC 127.0.0.1:8500)"


def test_external_without_addresses_is_refused() -> None:
    with pytest.raises(BackendError, match="gRPC target and the REST URL"):
        select_backend("external", image=None, binary=None)


def test_unknown_backend_lists_valid_ones() -> None:
    with pytest.raises(BackendError, match="auto, docker, binary, embedded, external"):
        select_backend("kubernetes", image=None, binary=None)


def test_docker_backend_resolves_gpu_image_without_engine() -> None:
    assert DockerBackend(gpus="all").image.endswith("-gpu")
    with pytest.raises(ValueError, match="'all'"):
        DockerBackend(gpus="lots")
