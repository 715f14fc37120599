"""Session fixtures: a tiny SavedModel and one embedded server serving it (Prometheus on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.load.load_servers import METRICS_PATH, Server, embedded_server, export_tiny


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tiny_model")
    export_tiny(base / "1")
    return base


@pytest.fixture(scope="session")
def server(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One tiny-model server with Prometheus monitoring on, shared by the whole session."""
    logs = tmp_path_factory.mktemp("logs")
    monitoring = logs / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n')
    with embedded_server(tiny_base, logs / "server.log", f"--monitoring_config_file={monitoring}") as running:
        yield running
