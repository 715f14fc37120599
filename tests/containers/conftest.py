"""Container tests run against a real engine (Docker, or Podman's Docker API from
scripts/container-engine.sh) with the locally built stand-in images; without either they skip
with the reason and the command that fixes it.

Every container these tests start carries ``pytest-tfserving=1`` and a per-run
``pytest-tfserving.test-run=<id>`` label; the run fails at teardown if one of them is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tfserving.images.engine import EngineError, connect
from pytest_tfserving.images.recipe import ImageRefs, image_refs
from tests.containers.standin_helpers import ours

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BUILD_ENV = "PYTEST_TFSERVING_BUILD_IMAGES"
# Set by .ci/run where an engine can be provided: a container test that cannot run is then an error.
REQUIRE_ENV = "PYTEST_TFSERVING_REQUIRE_CONTAINERS"


def _skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but the container tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    try:
        client = connect(timeout_s=120)
    except EngineError as exc:
        _skip_or_fail(str(exc))
    yield client
    leftovers = ours(client)
    for container in leftovers:
        container.remove(force=True)
    client.close()
    assert not leftovers, f"containers left behind by the tests: {[c.name for c in leftovers]}"


@pytest.fixture(scope="session")
def standin(engine: Any) -> ImageRefs:
    """The stand-in image references for the current sources, built on demand only when asked."""
    from pytest_tfserving.images.build import build, missing_images

    refs = image_refs()
    missing = missing_images(engine, refs)
    if missing and os.environ.get(BUILD_ENV) == "1":
        build()
        missing = missing_images(engine, refs)
    if missing:
        _skip_or_fail(
            f"stand-in images {', '.join(missing)} are not built for the current sources; run "
            f"`python -m pytest_tfserving.images build` (or set {BUILD_ENV}=1)"
        )
    return refs


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model repository: tiny/1 (SavedModel fp32), tiny_fp16/1 (model.tflite), broken/1 (garbage)."""
    from pytest_tfserving.models.tflite import convert
    from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel

    root = tmp_path_factory.mktemp("models")
    saved = export_savedmodel(build_tiny_cnn(seed=0), root / "tiny" / "1")
    lite_dir = root / "tiny_fp16" / "1"
    lite_dir.mkdir(parents=True)
    # As models.variants builds it: with signature_defs_metadata, so servers expose "images".
    (lite_dir / "model.tflite").write_bytes(convert(saved, "fp16", None))
    broken = root / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"this is not a protobuf \x00\xff" * 8)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="session")
def reference_batch(model_root: Path) -> tuple[Any, Any]:
    """(inputs, expected outputs) of the fp32 model, computed in-process with TensorFlow."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(7)
    inputs = rng.random((4, 8, 8, 3), dtype=np.float32)
    loaded = tf.saved_model.load(str(model_root / "tiny" / "1"))
    outputs = loaded.signatures["serving_default"](images=tf.constant(inputs))
    return inputs, outputs["output_0"].numpy()
