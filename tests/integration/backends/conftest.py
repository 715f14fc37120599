"""A tiny SavedModel (version 1) shared by the backend integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Base path ``.../tiny`` holding ``1/`` (saved_model.pb), as TF Serving expects."""
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    base = tmp_path_factory.mktemp("backend-models") / "tiny"
    export_savedmodel(build_tiny_cnn(), base / "1")
    return base


@pytest.fixture
def ryuk_or_disabled() -> Iterator[None]:
    """Use testcontainers' Ryuk reaper where its image is here; otherwise run without it (our own
    teardown still removes the containers), so engines without registry access can run the tests."""
    from testcontainers.core.config import testcontainers_config as config

    from pytest_tfserving.backends.engine import image_status

    previous = config.ryuk_disabled
    if not previous and not image_status(config.ryuk_image)[0]:
        config.ryuk_disabled = True
    try:
        yield
    finally:
        config.ryuk_disabled = previous
