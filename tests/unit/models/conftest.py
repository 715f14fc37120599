"""One tiny Keras model, its SavedModel, and every variant of it built once per test session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel
from pytest_tfserving.models.variants import build_model_variant
from pytest_tfserving.serving.spec import VARIANTS, ModelSpec


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    return build_tiny_cnn(seed=0)


@pytest.fixture(scope="session")
def tiny_savedmodel(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_savedmodel(tiny_model, tmp_path_factory.mktemp("source") / "tiny_savedmodel")


@pytest.fixture(scope="session")
def variant_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("variant_cache")


@pytest.fixture(scope="session")
def built_variants(tiny_model: Any, variant_cache: Path) -> dict[str, ModelSpec]:
    return {
        variant: build_model_variant(tiny_model, name="tiny", variant=variant, cache_dir=variant_cache)
        for variant in VARIANTS
    }


@pytest.fixture(scope="session")
def probe_inputs() -> np.ndarray:
    """Inputs in the calibration range ([0, 1)), seeded, independent of the calibration samples."""
    return np.random.default_rng(123).random((16, 8, 8, 3), dtype=np.float32)
