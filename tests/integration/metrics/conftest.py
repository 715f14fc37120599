"""One embedded TF-Serving-compatible server (tiny model, Prometheus on) for the metrics tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pytest_tfserving.backends.local import LocalServer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    from pytest_tfserving.backends.embedded import EmbeddedBackend
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel
    from pytest_tfserving.serving.spec import ServerSpec

    root = tmp_path_factory.mktemp("metrics-embedded")
    export_savedmodel(build_tiny_cnn(), root / "models" / "tiny" / "1")
    spec = ServerSpec.single("tiny", root / "models" / "tiny")
    server = EmbeddedBackend().start(spec, root, startup_timeout_s=120.0)
    try:
        yield server
    finally:
        server.stop()
