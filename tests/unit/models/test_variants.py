"""Each variant is a real servable directory whose model agrees with the fp32 Keras model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_tfserving.models.tflite import ModelBuildError
from pytest_tfserving.models.tiny import build_tiny_cnn
from pytest_tfserving.models.variants import TFLITE_FILE, build_info, build_model_variant
from pytest_tfserving.serving.spec import ModelSpec, SpecError

# Max absolute difference of the 10 softmax probabilities against the fp32 Keras model. The tiny
# random-weight model's probabilities lie in about [0.07, 0.12] (std 0.014), so the correlation check
# below is what shows the variant computes the same function. Measured: fp16 8e-6, int8-dynamic 8e-5,
# int8 2e-3.
TOLERANCE = {"fp32": 1e-5, "fp16": 1e-4, "int8-dynamic": 1e-3, "int8": 1e-2}


def _run_tflite(path: Path, inputs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["images"], "outputs": ["output_0"]}
    }, "TF Serving's TFLite session needs the serving_default signature"
    runner = interpreter.get_signature_runner("serving_default")
    return np.asarray(runner(images=inputs)["output_0"])


def _run_savedmodel(path: Path, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return np.asarray(signature(images=tf.constant(inputs))["output_0"])


@pytest.mark.parametrize("variant", list(TOLERANCE))
def test_variant_serves_and_agrees_with_fp32(
    variant: str, built_variants: dict[str, ModelSpec], tiny_model: Any, probe_inputs: np.ndarray
) -> None:
    spec = built_variants[variant]
    assert spec.name == "tiny" and spec.variant == variant and spec.base_path.name == "tiny"
    assert sorted(p.name for p in spec.base_path.iterdir()) == ["1"]
    version_dir = spec.base_path / "1"
    if variant == "fp32":
        assert (version_dir / "saved_model.pb").is_file()
        outputs = _run_savedmodel(version_dir, probe_inputs)
    else:
        assert sorted(p.name for p in version_dir.iterdir()) == [TFLITE_FILE]
        outputs = _run_tflite(version_dir / TFLITE_FILE, probe_inputs)
    expected = np.asarray(tiny_model(probe_inputs))
    assert outputs.shape == (16, 10)
    assert np.abs(outputs - expected).max() <= TOLERANCE[variant]
    assert np.corrcoef(outputs.ravel(), expected.ravel())[0, 1] >= 0.95
    if variant != "fp32":
        assert not np.array_equal(outputs, expected), (
            "a TFLite variant that matches bit for bit was not converted"
        )


def test_int8_is_integer_only_with_float_edges(built_variants: dict[str, ModelSpec]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(built_variants["int8"].base_path / "1" / TFLITE_FILE))
    edges = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    float_tensors = {d["index"] for d in interpreter.get_tensor_details() if d["dtype"] == np.float32}
    assert float_tensors == edges
    assert all(d["dtype"] == np.float32 for d in interpreter.get_input_details())


def test_variants_differ_in_size(built_variants: dict[str, ModelSpec]) -> None:
    def size(variant: str) -> int:
        return (built_variants[variant].base_path / "1" / TFLITE_FILE).stat().st_size

    assert size("int8") < size("fp16")
    assert size("int8-dynamic") < size("fp16")


def test_second_build_reuses_the_cache(built_variants: dict[str, ModelSpec], variant_cache: Path) -> None:
    first = built_variants["int8"]
    inode = first.base_path.stat().st_ino
    # A fresh model object with the same weights (Keras gives its layers new names in this process).
    again = build_model_variant(build_tiny_cnn(seed=0), name="tiny", variant="int8", cache_dir=variant_cache)
    assert again == first
    assert again.base_path.stat().st_ino == inode
    assert build_info(again)["build_id"] == build_info(first)["build_id"]


def test_cache_key_follows_content(tiny_model: Any, variant_cache: Path) -> None:
    other_weights = build_model_variant(
        build_tiny_cnn(seed=1), name="tiny", variant="fp32", cache_dir=variant_cache
    )
    assert (
        other_weights.base_path
        != build_model_variant(tiny_model, name="tiny", variant="fp32", cache_dir=variant_cache).base_path
    )


def test_savedmodel_source_and_caller_dataset(tiny_savedmodel: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    samples = [{"images": rng.random((1, 8, 8, 3), dtype=np.float32)} for _ in range(16)]
    spec = build_model_variant(
        tiny_savedmodel,
        name="sm",
        variant="int8",
        cache_dir=tmp_path,
        representative_dataset=lambda: iter(samples),
    )
    info = build_info(spec)
    assert info["calibration"].startswith("caller: 16 samples")
    # Same samples given another way (a list of single-array lists): same entry.
    same = build_model_variant(
        tiny_savedmodel,
        name="sm",
        variant="int8",
        cache_dir=tmp_path,
        representative_dataset=[[s["images"]] for s in samples],
    )
    assert build_info(same)["build_id"] == info["build_id"]
    other = build_model_variant(
        tiny_savedmodel, name="sm", variant="int8", cache_dir=tmp_path, representative_dataset=samples[:8]
    )
    assert other.base_path != spec.base_path
    fp32 = build_model_variant(tiny_savedmodel, name="sm", variant="fp32", cache_dir=tmp_path)
    assert (fp32.base_path / "1" / "saved_model.pb").read_bytes() == (
        tiny_savedmodel / "saved_model.pb"
    ).read_bytes()


def _leftovers(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in cache_dir.iterdir() if p.name != ".locks")


def test_dataset_raising_midway_leaves_nothing(tiny_savedmodel: Path, tmp_path: Path) -> None:
    def broken() -> Any:
        for index in range(10):
            if index == 5:
                raise RuntimeError("camera unplugged")
            yield {"images": np.zeros((1, 8, 8, 3), np.float32)}

    with pytest.raises(RuntimeError, match="camera unplugged"):
        build_model_variant(
            tiny_savedmodel, name="sm", variant="int8", cache_dir=tmp_path, representative_dataset=broken
        )
    assert _leftovers(tmp_path) == []


def test_conversion_failing_midway_rolls_back(tiny_savedmodel: Path, tmp_path: Path) -> None:
    good = [{"images": np.zeros((1, 8, 8, 3), np.float32)}] * 5
    bad = [{"images": np.zeros((1, 4, 4, 3), np.float32)}]  # wrong shape: calibration fails on it
    with pytest.raises(ModelBuildError, match="TFLite conversion to int8 failed"):
        build_model_variant(
            tiny_savedmodel, name="sm", variant="int8", cache_dir=tmp_path, representative_dataset=good + bad
        )
    assert _leftovers(tmp_path) == []


def test_unknown_variant_lists_the_valid_ones(tiny_savedmodel: Path, tmp_path: Path) -> None:
    with pytest.raises(
        SpecError, match=r"unknown model variant 'int4'; valid variants: fp32, fp16, int8-dynamic, int8"
    ):
        build_model_variant(tiny_savedmodel, name="m", variant="int4", cache_dir=tmp_path)


def test_source_errors_say_what_to_pass(tiny_savedmodel: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"is not a SavedModel: it has no saved_model\.pb"):
        build_model_variant(tmp_path / "empty", name="m", variant="fp32", cache_dir=tmp_path / "c")
    with pytest.raises(SpecError, match="does not exist"):
        build_model_variant(tmp_path / "missing", name="m", variant="fp32", cache_dir=tmp_path / "c")
    with pytest.raises(SpecError, match=r"keras\.Model or a SavedModel directory, got int"):
        build_model_variant(42, name="m", variant="fp32", cache_dir=tmp_path / "c")
    served = build_model_variant(tiny_savedmodel, name="m", variant="fp32", cache_dir=tmp_path / "c")
    with pytest.raises(
        SpecError, match=r"is a TF Serving model directory \(versions \['1'\]\).*pass one version"
    ):
        build_model_variant(served.base_path, name="m", variant="fp32", cache_dir=tmp_path / "c")
    with pytest.raises(SpecError, match="does not match the inputs"):
        build_model_variant(
            tiny_savedmodel,
            name="m",
            variant="int8",
            cache_dir=tmp_path / "c",
            representative_dataset=[{"x": 1}],
        )
    with pytest.raises(SpecError, match="not usable in a URL path"):
        build_model_variant(tiny_savedmodel, name="a/b", variant="fp32", cache_dir=tmp_path / "c")
