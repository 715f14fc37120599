"""Embedded-server fixtures: one exported tiny model per session and a server factory that stops
every server it started."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_tfserving.embedded.launch import ServerProcess, embedded_command, start_server

MONITORING = 'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
METRICS_PATH = "/monitoring/prometheus/metrics"

StartServer = Callable[..., ServerProcess]


@pytest.fixture(scope="session")
def tiny_savedmodel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SavedModel directory (copy it into a version directory to serve it)."""
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    return export_savedmodel(build_tiny_cnn(seed=0), tmp_path_factory.mktemp("tiny") / "savedmodel")


@pytest.fixture
def model_dir(tmp_path: Path, tiny_savedmodel: Path) -> Path:
    """tmp_path/tiny with version 1 of the tiny model."""
    base = tmp_path / "tiny"
    shutil.copytree(tiny_savedmodel, base / "1")
    return base


@pytest.fixture
def monitoring_file(tmp_path: Path) -> Path:
    path = tmp_path / "monitoring.config"
    path.write_text(MONITORING)
    return path


@pytest.fixture
def start(model_dir: Path, monitoring_file: Path) -> Iterator[StartServer]:
    """``start(*extra_flags)`` serves model "tiny" from ``model_dir`` with Prometheus on."""
    started: list[ServerProcess] = []

    def _start(*flags: str) -> ServerProcess:
        argv = embedded_command(
            "--port=0",
            "--rest_api_port=0",
            "--model_name=tiny",
            f"--model_base_path={model_dir}",
            f"--monitoring_config_file={monitoring_file}",
            *flags,
        )
        server = start_server(argv)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def half_plus_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TF1-style SavedModel with predict, classify and regress signatures (example_models)."""
    from tests.integration.embedded.example_models import export_half_plus

    return export_half_plus(tmp_path_factory.mktemp("half_plus_two") / "savedmodel")


@pytest.fixture
def serve() -> Iterator[StartServer]:
    """``serve(*flags)``: the embedded server with exactly these flags (plus free ports), stopped after."""
    started: list[ServerProcess] = []

    def _serve(*flags: str, want_rest: bool = True) -> ServerProcess:
        server = start_server(embedded_command("--port=0", "--rest_api_port=0", *flags), want_rest=want_rest)
        started.append(server)
        return server

    yield _serve
    for server in started:
        server.stop()
