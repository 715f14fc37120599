"""Build, once, a servable directory for a model in one variant: fp32, fp16, int8-dynamic or int8.

The result is TF Serving's layout, ``<base_path>/<version>/``, holding the SavedModel (fp32) or
``model.tflite`` (the TFLite variants; the server needs ``--prefer_tflite_model=true`` for those).
Entries are keyed by content (what the model computes, the variant, the TensorFlow version and
the calibration data), so later sessions and parallel workers reuse one build. A SavedModel source
is keyed by ``models.identity``, not its bytes: the same seeded model exported again in another
session has other bytes but the same identity, and hits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from pytest_tfserving.models.build_cache import cached_build
from pytest_tfserving.models.hashing import hash_keras_model, hash_samples
from pytest_tfserving.models.identity import identity_digest
from pytest_tfserving.models.tflite import (
    GENERATED_SAMPLES,
    RepresentativeDataset,
    convert,
    generated_dataset,
    input_signature,
    materialize_dataset,
)
from pytest_tfserving.perf.progress import Progress, Silent
from pytest_tfserving.serving.spec import TFLITE_VARIANTS, VARIANTS, ModelSpec, SpecError, Variant
from pytest_tfserving.tf_extra import require_tf_extra

CACHE_FORMAT = 3
"""Bump when the layout, the key or conversion settings change, so old entries are not reused.
2: SavedModel sources keyed by their identity instead of their bytes.
3: TFLite variants carry the SavedModel's signatures as ``signature_defs_metadata`` (older entries
lack it, and TF Serving would expose tensor names for them)."""
TFLITE_FILE = "model.tflite"
BUILD_INFO = "build.json"

Signature = dict[str, tuple[tuple[int | None, ...], np.dtype]]


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise SpecError(f"unknown model variant {variant!r}; valid variants: {', '.join(VARIANTS)}")


def _savedmodel_dir(source: Path) -> Path:
    """The source directory if it is a SavedModel, else a SpecError saying what to pass instead."""
    if (source / "saved_model.pb").is_file() or (source / "saved_model.pbtxt").is_file():
        return source
    if source.is_dir():
        versions = sorted(
            p.name for p in source.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()
        )
        if versions:
            raise SpecError(
                f"{source} is a TF Serving model directory (versions {versions}), not a SavedModel; "
                f"pass one version, e.g. {source / versions[-1]}"
            )
        raise SpecError(
            f"{source} is not a SavedModel: it has no saved_model.pb; export one with "
            "keras Model.export(path, format='tf_saved_model') or pass the keras.Model"
        )
    raise SpecError(f"model source {source} does not exist; pass a SavedModel directory or a keras.Model")


def _is_keras_model(source: Any) -> bool:
    return hasattr(source, "get_weights") and hasattr(source, "export") and hasattr(source, "inputs")


def _keras_signature(model: Any) -> Signature:
    return {str(tensor.name): (tuple(tensor.shape), np.dtype(str(tensor.dtype))) for tensor in model.inputs}


def build_model_variant(
    source: Any,
    *,
    name: str,
    variant: Variant | str,
    cache_dir: Path,
    version: int = 1,
    representative_dataset: RepresentativeDataset | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> ModelSpec:
    """A ModelSpec whose ``base_path`` serves ``source`` as ``variant``, built now or reused.

    ``source`` is a keras.Model or a SavedModel directory with a ``serving_default`` signature.
    For ``int8`` the calibration data is ``representative_dataset`` (read once; dicts
    ``{input_name: array}``) or, when None, 64 seeded samples uniform in [0, 1) drawn from the input
    signature; ``seed`` only affects that generated data. ``progress`` hears each step of a build
    (a reused entry says nothing): builds take seconds to minutes. Raises SpecError for bad input,
    ModelBuildError when conversion fails and MissingTensorFlow without the [tf] extra.
    """
    require_tf_extra(f"building model variant {variant!r} of {name!r} (tfserving_models.build)")
    import tensorflow as tf

    _check_variant(variant)
    ModelSpec(name=name, base_path=Path(cache_dir)).validate()
    if version < 0:
        raise SpecError(
            f"model version {version} must be 0 or more (TF Serving version directories are numbers)"
        )

    keras_model = source if _is_keras_model(source) else None
    if keras_model is not None:
        source_hash = hash_keras_model(keras_model)
        savedmodel: Path | None = None
    elif isinstance(source, (str, os.PathLike)):
        savedmodel = _savedmodel_dir(Path(source).resolve())
        source_hash = identity_digest(savedmodel)
    else:
        raise SpecError(
            f"model source must be a keras.Model or a SavedModel directory, got {type(source).__name__}"
        )

    samples = None
    calibration = "none"
    if variant == "int8":
        if representative_dataset is None:
            # Drawn inside the build from the exported signature: on a cache hit nothing is loaded.
            calibration = f"generated: {GENERATED_SAMPLES} samples uniform [0, 1), seed {seed}"
        else:
            signature = _keras_signature(keras_model) if savedmodel is None else input_signature(savedmodel)
            samples = materialize_dataset(representative_dataset, signature)
            calibration = f"caller: {len(samples)} samples sha256 {hash_samples(samples)}"

    key_fields = {
        "format": CACHE_FORMAT,
        "source": source_hash,
        "variant": variant,
        "version": version,
        "tensorflow": tf.__version__,
        "calibration": calibration,
    }
    digest = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
    entry = f"{name}-{variant}-{digest[:16]}"

    report = progress or Silent()
    build_started = time.monotonic()

    def build(tmp: Path) -> None:
        version_dir = tmp / name / str(version)
        export_dir = savedmodel
        if keras_model is not None:
            from pytest_tfserving.models.tiny import export_savedmodel

            report.phase("exporting the keras model as a SavedModel")
            export_dir = export_savedmodel(keras_model, tmp / "export")
        assert export_dir is not None
        if variant in TFLITE_VARIANTS:
            calibration_samples = samples
            if variant == "int8" and calibration_samples is None:
                calibration_samples = generated_dataset(input_signature(export_dir), seed)
            n_samples = len(calibration_samples or ())
            calibrating = f", calibrating on {n_samples} samples" if n_samples else ""
            report.phase(f"converting to TFLite {variant}{calibrating}")
            tflite = convert(export_dir, variant, calibration_samples)
            version_dir.mkdir(parents=True)
            (version_dir / TFLITE_FILE).write_bytes(tflite)
        elif keras_model is not None:
            version_dir.parent.mkdir(parents=True)
            os.rename(export_dir, version_dir)
        else:
            report.phase("copying the SavedModel")
            shutil.copytree(export_dir, version_dir)
        if keras_model is not None and (tmp / "export").exists():
            shutil.rmtree(tmp / "export")
        info = dict(key_fields, name=name, build_id=uuid.uuid4().hex, pid=os.getpid(), built_at=time.time())
        (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2, sort_keys=True))

    hit = cached_build(Path(cache_dir), entry, build)
    if hit.built:
        report.done(f"built {variant} in {time.monotonic() - build_started:.1f} s: {hit.path}")
    return ModelSpec(name=name, base_path=hit.path / name, variant=variant)  # type: ignore[arg-type]


def build_info(model: ModelSpec) -> dict[str, Any]:
    """What the variant was built from (the cache key fields) plus its ``build_id``: equal ids mean
    the same build was reused."""
    return dict(json.loads((Path(model.base_path).parent / BUILD_INFO).read_text()))
