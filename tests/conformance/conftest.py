"""Servers under conformance test: ours ("embedded"), tensorflow_model_server ("binary") and
tensorflow/serving ("docker"). Each serves the tiny model as "tiny" with Prometheus enabled; the
real ones skip, with the reason, where they are not installed."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_tfserving.embedded.launch import ServerProcess, embedded_command, start_server
from tests.conformance.docker_container import (
    DOCKER_IMAGE,
    container_kwargs,
    docker_client,
    unavailable_reason,
)

MODEL = "tiny"
METRICS_PATH = "/monitoring/prometheus/metrics"
MONITORING = f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'


@dataclass(frozen=True)
class Server:
    kind: str
    grpc_target: str
    rest_url: str
    model: str = MODEL
    metrics_path: str = METRICS_PATH


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<root>/tiny/1 holds the tiny SavedModel; <root>/monitoring.config enables Prometheus."""
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    root = tmp_path_factory.mktemp("conformance")
    export_savedmodel(build_tiny_cnn(seed=0), root / MODEL / "1")
    (root / "monitoring.config").write_text(MONITORING)
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flags(base_path: str, monitoring: str, grpc_port: int, rest_port: int) -> list[str]:
    return [
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_name={MODEL}",
        f"--model_base_path={base_path}",
        f"--monitoring_config_file={monitoring}",
    ]


def _process_server(kind: str, process: ServerProcess) -> Iterator[Server]:
    try:
        yield Server(kind, process.grpc_target, process.rest_url)
    finally:
        process.stop()


def _embedded(root: Path) -> Iterator[Server]:
    argv = embedded_command(*_flags(str(root / MODEL), str(root / "monitoring.config"), 0, 0))
    yield from _process_server("embedded", start_server(argv))


def _binary(root: Path) -> Iterator[Server]:
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip(
            "tensorflow_model_server is not on PATH (install the tensorflow-model-server apt package)"
        )
    flags = _flags(str(root / MODEL), str(root / "monitoring.config"), _free_port(), _free_port())
    yield from _process_server("binary", start_server([binary, *flags]))


def _docker(root: Path) -> Iterator[Server]:
    client, engine_detail = docker_client()
    reason = unavailable_reason(client, engine_detail)
    if reason is not None:
        pytest.skip(reason)
    assert client is not None
    grpc_port, rest_port = _free_port(), _free_port()
    kwargs = container_kwargs(root, MODEL, "monitoring.config", grpc_port, rest_port)
    container = client.containers.run(**kwargs)
    try:
        deadline = time.monotonic() + 120
        while b"Exporting HTTP/REST API" not in container.logs():
            if time.monotonic() > deadline:
                pytest.fail(f"{DOCKER_IMAGE} not ready:\n{container.logs().decode()[-3000:]}")
            time.sleep(0.2)
        yield Server("docker", f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{rest_port}")
    finally:
        container.stop(timeout=5)
        client.close()


@pytest.fixture(scope="module", params=["embedded", "binary", "docker"])
def server(request: pytest.FixtureRequest, model_root: Path) -> Iterator[Server]:
    starters = {"embedded": _embedded, "binary": _binary, "docker": _docker}
    yield from starters[request.param](model_root)


@pytest.fixture(scope="session")
def expected(model_root: Path) -> object:
    """The tiny model's own outputs for a fixed batch, computed in this process with TensorFlow."""
    import numpy as np
    import tensorflow as tf

    images = np.random.default_rng(7).random((3, 8, 8, 3), dtype=np.float32)
    loaded = tf.saved_model.load(str(model_root / MODEL / "1"))
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    return images, outputs["output_0"].numpy()
