"""Tiny models for fast tests: real Keras graphs that build, save and quantize in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_INPUT_SHAPE: tuple[int, int, int] = (8, 8, 3)


def build_tiny_cnn(
    seed: int = 0, extra_dense_layers: int = 0, width: int = 16, dense_units: int = 512
) -> Any:
    """A small conv net (input 8x8x3 float32, 10-way softmax).

    ``extra_dense_layers`` (of ``dense_units`` each) makes a genuinely slower model of the same
    interface (for regression tests); from the second layer on each adds a ``dense_units``-square
    matmul, the finest-grained knob (conv ``width`` steps are uneven: oneDNN picks other kernels).
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=TINY_INPUT_SHAPE, dtype="float32", name="images")
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    for _ in range(extra_dense_layers):
        x = keras.layers.Dense(dense_units, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def export_savedmodel(model: Any, path: Path) -> Path:
    """Write ``model`` as a SavedModel with a ``serving_default`` signature at ``path``."""
    path = Path(path)
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def export_tiny_model_in_child(version_dir: Path, **build_kwargs: Any) -> Path:
    """Export ``build_tiny_cnn(**build_kwargs)`` to ``version_dir`` from a child process, so the caller
    (a load generator, a benchmark) never imports TensorFlow itself."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; from pathlib import Path; "
        "from pytest_tfserving.models.tiny import build_tiny_cnn, export_savedmodel; "
        "export_savedmodel(build_tiny_cnn(**json.loads(sys.argv[2])), Path(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(version_dir), json.dumps(build_kwargs)],
        check=True,
        capture_output=True,
    )
    return Path(version_dir)
