"""TFLite tensor names resolved as TfLiteSession resolves a SignatureDef's names."""

from __future__ import annotations

import pytest

from pytest_tfserving.embedded.tflite import _resolve, legacy_name


def test_legacy_name_drops_the_output_index() -> None:
    assert legacy_name("tflite_input:0") == "tflite_input"
    assert legacy_name("serving_default_images:0") == "serving_default_images"
    assert legacy_name("y") == "y"


def test_a_name_resolves_as_is_or_by_its_legacy_name() -> None:
    tensors = {"tflite_input": 0, "StatefulPartitionedCall:0": 7}
    assert _resolve(tensors, "tflite_input:0", "Signature input x") == 0  # TF Serving's own test model
    assert _resolve(tensors, "StatefulPartitionedCall:0", "Signature output y") == 7
    with pytest.raises(ValueError, match="Signature output y references an unknown tensor"):
        _resolve(tensors, "missing:0", "Signature output y")
