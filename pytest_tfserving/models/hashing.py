"""Content hashes of model sources, so a variant cache entry is reused only for the same model.

A Keras model is hashed from its architecture and weights, with layer names replaced by their
position: Keras numbers unnamed layers per process (``conv2d``, ``conv2d_1``, ...), and the same
model built twice must map to the same entry. SavedModel directories and ``.tflite`` files are
keyed by ``models.identity`` (what they compute); ``hash_directory`` is the plain byte hash that
identity falls back to, and the one deployment-store entries recorded before it were named by.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

_CHUNK = 1 << 20


def hash_directory(root: Path | str) -> str:
    """sha256 over every file's relative path and bytes, in a fixed order (a single file: its bytes).

    Changes whenever the serialization does (a SavedModel exported twice differs), so models are
    keyed by ``models.identity.model_identity`` instead; this stays for byte-level checks and for
    deployment-store entries named by it before identities existed.
    """
    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update((path.relative_to(root).as_posix().encode() if path != root else b"") + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def _canonical(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _canonical(item, names) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item, names) for item in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


def hash_keras_model(model: Any) -> str:
    """sha256 of the model's canonicalized config, weights and the Keras version that exports it."""
    import keras

    names = {layer.name: f"layer_{index}" for index, layer in enumerate(model.layers)}
    names[model.name] = "model"
    config = _canonical(model.get_config(), names)
    digest = hashlib.sha256()
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(f"keras {keras.__version__}".encode())
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def hash_samples(samples: list[dict[str, np.ndarray]]) -> str:
    """sha256 of a materialized representative dataset (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for sample in samples:
        for name in sorted(sample):
            array = np.ascontiguousarray(sample[name])
            digest.update(f"{name}{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
