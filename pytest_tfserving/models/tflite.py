"""SavedModel -> TFLite flatbuffer for the fp16, int8-dynamic and int8 variants.

Quantization is the Python converter's ``optimizations=[tf.lite.Optimize.DEFAULT]`` (there is no
``GET_FULLY_CONNECTED_OPTIMIZATIONS`` option, whatever the study says), plus float16 as the target
type for fp16, or a representative dataset and integer-only builtin ops for full int8. The int8
model keeps float32 inputs and outputs (quantize/dequantize at the edges), so clients send the same
requests to every variant; all ops in between are int8.

Every variant carries the SavedModel's ``serving_default`` as ``signature_defs_metadata``
(``models.tflite_signatures``), so TF Serving exposes the SavedModel's input and output names for it,
not the TFLite tensor names it generates otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pytest_tfserving.serving.spec import SpecError

SIGNATURE = "serving_default"
GENERATED_SAMPLES = 64
"""Calibration samples drawn when the caller gives no representative dataset."""

Sample = Mapping[str, Any] | Sequence[Any] | np.ndarray
RepresentativeDataset = Callable[[], Iterable[Sample]] | Iterable[Sample]


class ModelBuildError(RuntimeError):
    """Converting a model failed; the message names the variant and what to change."""


def input_signature(savedmodel_dir: Path) -> dict[str, tuple[tuple[int | None, ...], np.dtype]]:
    """Input name -> (shape, numpy dtype) of the ``serving_default`` signature, which TF Serving
    and the TFLite session both use."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(savedmodel_dir))
    signatures = dict(loaded.signatures)
    if SIGNATURE not in signatures:
        raise SpecError(
            f"SavedModel {savedmodel_dir} has no {SIGNATURE!r} signature (it has {sorted(signatures)}); "
            "export it with one, e.g. keras Model.export(path, format='tf_saved_model')"
        )
    _, kwargs = signatures[SIGNATURE].structured_input_signature
    return {
        name: (tuple(spec.shape.as_list()), np.dtype(spec.dtype.as_numpy_dtype))
        for name, spec in kwargs.items()
    }


def generated_dataset(
    signature: Mapping[str, tuple[tuple[int | None, ...], np.dtype]],
    seed: int,
    count: int = GENERATED_SAMPLES,
) -> list[dict[str, np.ndarray]]:
    """Seeded calibration inputs: floats uniform in [0, 1), integers in [0, 10), batch size 1.

    Models trained on another input range calibrate better with the caller's own samples.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        sample = {}
        for name, (shape, dtype) in signature.items():
            dims = [1 if (i == 0 and d is None) else d for i, d in enumerate(shape)]
            if any(d is None for d in dims):
                raise SpecError(
                    f"input {name!r} has shape {shape} with unknown non-batch dimensions, so calibration "
                    "data cannot be generated; pass representative_dataset= with real samples"
                )
            concrete = tuple(int(d) for d in dims if d is not None)
            if np.issubdtype(dtype, np.floating):
                sample[name] = rng.random(concrete, dtype=np.float32).astype(dtype)
            elif np.issubdtype(dtype, np.integer):
                sample[name] = rng.integers(0, 10, concrete).astype(dtype)
            else:
                raise SpecError(
                    f"input {name!r} has dtype {dtype}, for which no calibration data can be generated; "
                    "pass representative_dataset= with real samples"
                )
        samples.append(sample)
    return samples


def materialize_dataset(
    dataset: RepresentativeDataset, signature: Mapping[str, tuple[tuple[int | None, ...], np.dtype]]
) -> list[dict[str, np.ndarray]]:
    """Read the caller's samples once, as dicts keyed by input name, so they can be hashed for the
    cache key and replayed to the converter. Accepts a TFLite-style callable returning a generator,
    or any iterable; each sample is a dict, a list in input order (single-input models), or an array."""
    items = dataset() if callable(dataset) else dataset
    names = list(signature)
    samples: list[dict[str, np.ndarray]] = []
    for index, item in enumerate(items):
        if isinstance(item, Mapping):
            raw = dict(item)
        elif isinstance(item, np.ndarray) or not isinstance(item, Sequence):
            raw = {names[0]: item} if len(names) == 1 else {}
        elif len(names) == 1 and len(item) == 1:
            raw = {names[0]: item[0]}
        else:
            raw = {}
        if set(raw) != set(names):
            raise SpecError(
                f"representative_dataset sample {index} does not match the inputs {names}; "
                "yield dicts {input_name: array}, e.g. {'" + names[0] + "': batch_of_one}"
            )
        samples.append({name: np.asarray(raw[name], dtype=signature[name][1]) for name in names})
    if not samples:
        raise SpecError("representative_dataset yielded no samples; int8 calibration needs some (e.g. 64)")
    return samples


def convert(savedmodel_dir: Path, variant: str, samples: list[dict[str, np.ndarray]] | None) -> bytes:
    """The ``model.tflite`` bytes for ``variant``, with the ``serving_default`` signature both in
    TFLite's signature table and in the ``signature_defs_metadata`` TF Serving reads."""
    from pytest_tfserving.models.tflite_signatures import SignatureMismatch, add_savedmodel_signatures

    content = _converted(savedmodel_dir, variant, samples)
    try:
        return add_savedmodel_signatures(content, savedmodel_dir, (SIGNATURE,))
    except SignatureMismatch as exc:
        raise ModelBuildError(f"TFLite {variant} model: {exc}") from exc


def _converted(savedmodel_dir: Path, variant: str, samples: list[dict[str, np.ndarray]] | None) -> bytes:
    """What the TFLite converter makes of ``serving_default`` for ``variant``."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel_dir), signature_keys=[SIGNATURE])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if samples is None:
            raise ValueError("int8 needs calibration samples")
        replay = samples

        def representative() -> Iterable[dict[str, np.ndarray]]:
            yield from replay

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif variant != "int8-dynamic":
        raise ValueError(f"not a TFLite variant: {variant!r}")
    try:
        with warnings.catch_warnings():
            # The converter's calibrator still uses tf.lite.Interpreter internally; not ours to fix.
            warnings.filterwarnings(
                "ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning
            )
            return bytes(converter.convert())
    except Exception as exc:
        hint = (
            " Full int8 needs every op to have an int8 kernel and samples that match the inputs; "
            "try variant='int8-dynamic' or check representative_dataset."
            if variant == "int8"
            else ""
        )
        raise ModelBuildError(f"TFLite conversion to {variant} failed: {exc}.{hint}") from exc
