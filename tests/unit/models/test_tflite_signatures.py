"""Every TFLite variant carries the SavedModel's ``serving_default`` in ``signature_defs_metadata``,
the one place TF Serving reads a TFLite model's signatures from; its identity follows the tensors the
metadata names, not the names."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow.core.protobuf import meta_graph_pb2

from pytest_tfserving.embedded.tflite import signature_defs_from_model
from pytest_tfserving.models.identity import model_identity
from pytest_tfserving.models.tflite_signatures import (
    BUFFER_ALIGNMENT,
    savedmodel_signature_defs,
    tflite_signature_defs,
    with_signature_defs,
)
from pytest_tfserving.models.variants import TFLITE_FILE
from pytest_tfserving.serving.spec import TFLITE_VARIANTS, ModelSpec


def _content(built_variants: dict[str, ModelSpec], variant: str) -> bytes:
    return (built_variants[variant].base_path / "1" / TFLITE_FILE).read_bytes()


@pytest.mark.parametrize("variant", sorted(TFLITE_VARIANTS))  # sorted: xdist workers collect alike
def test_variant_metadata_is_the_savedmodels_signature_on_the_tflite_tensors(
    variant: str, built_variants: dict[str, ModelSpec]
) -> None:
    from ai_edge_litert.interpreter import Interpreter

    content = _content(built_variants, variant)
    (written,) = signature_defs_from_model(content).items()
    key, signature = written
    fp32 = built_variants["fp32"].base_path / "1"
    (source,) = savedmodel_signature_defs(fp32, ("serving_default",)).values()
    assert key == "serving_default"
    assert signature.method_name == source.method_name == "tensorflow/serving/predict"
    interpreter = Interpreter(model_content=content)
    runner = interpreter.get_signature_runner("serving_default")
    by_index = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    for written_side, source_side, details in (
        (signature.inputs, source.inputs, runner.get_input_details()),
        (signature.outputs, source.outputs, runner.get_output_details()),
    ):
        assert sorted(written_side) == sorted(source_side) == sorted(details)
        for alias, info in written_side.items():
            assert info.name == by_index[details[alias]["index"]]  # the tensor TFLite maps the alias to
            assert info.dtype == source_side[alias].dtype
            assert info.tensor_shape == source_side[alias].tensor_shape  # batch -1, as the SavedModel
    assert [d.size for d in signature.inputs["images"].tensor_shape.dim] == [-1, 8, 8, 3]


@pytest.mark.parametrize("variant", sorted(TFLITE_VARIANTS))  # sorted: xdist workers collect alike
def test_variant_metadata_is_readable_by_older_readers_and_buffers_stay_aligned(
    variant: str, built_variants: dict[str, ModelSpec]
) -> None:
    from tensorflow.lite.python import schema_py_generated as schema

    content = _content(built_variants, variant)
    for signature in signature_defs_from_model(content).values():
        assert b"\0" not in signature.SerializeToString(), "readers using c_str() would cut it here"
    model = schema.Model.GetRootAsModel(content, 0)
    starts = [
        buffer._tab.Vector(buffer._tab.Offset(4))
        for buffer in (model.Buffers(i) for i in range(model.BuffersLength()))
        if buffer.DataLength()
    ]
    assert starts and all(start % BUFFER_ALIGNMENT == 0 for start in starts)


def test_writing_again_replaces_the_entry(built_variants: dict[str, ModelSpec]) -> None:
    content = _content(built_variants, "int8-dynamic")
    other = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/classify")
    again = with_signature_defs(content, {"other": other})
    assert signature_defs_from_model(again) == {"other": other}
    assert again.count(b"signature_defs_metadata") == 1


def test_a_signature_the_converted_model_lacks_is_refused(
    built_variants: dict[str, ModelSpec], tiny_savedmodel: Path
) -> None:
    content = _content(built_variants, "fp16")
    source = savedmodel_signature_defs(tiny_savedmodel, ("serving_default",))
    renamed = meta_graph_pb2.SignatureDef()
    renamed.CopyFrom(source["serving_default"])
    renamed.inputs["pixels"].CopyFrom(renamed.inputs.pop("images"))
    with pytest.raises(ValueError, match=r"inputs are \['images'\], the SavedModel's \['pixels'\]"):
        tflite_signature_defs(content, {"serving_default": renamed})
    with pytest.raises(ValueError, match="has no signature"):
        tflite_signature_defs(content, {"serving": source["serving_default"]})


def test_identity_follows_the_named_tensors_not_the_names(
    built_variants: dict[str, ModelSpec], tmp_path: Path
) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    content = _content(built_variants, "int8-dynamic")
    (signature,) = signature_defs_from_model(content).values()

    def identity_with(edit: str) -> str:
        model = content
        changed = meta_graph_pb2.SignatureDef()
        changed.CopyFrom(signature)
        if edit == "renamed tensors":  # what another session's layer and function numbering does
            flat = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
            for tensor in flat.subgraphs[0].tensors:
                tensor.name = b"renamed_" + tensor.name
            model = flatbuffer_utils.convert_object_to_bytearray(flat)
            for info in [*changed.inputs.values(), *changed.outputs.values()]:
                info.name = "renamed_" + info.name
        elif edit == "alias":
            changed.outputs["probabilities"].CopyFrom(changed.outputs.pop("output_0"))
        elif edit == "other tensor":  # the output alias names the input tensor
            changed.outputs["output_0"].name = changed.inputs["images"].name
        path = tmp_path / f"{edit}.tflite"
        path.write_bytes(with_signature_defs(model, {"serving_default": changed}))
        return model_identity(path)

    unchanged = identity_with("none")
    assert unchanged == model_identity(built_variants["int8-dynamic"].base_path / "1" / TFLITE_FILE)
    assert identity_with("renamed tensors") == unchanged
    assert len({unchanged, identity_with("alias"), identity_with("other tensor")}) == 3
