"""The SavedModel's SignatureDefs written into a converted ``model.tflite``, where TF Serving reads them.

TF Serving's TfLiteSession (2.19.1) takes a TFLite model's signatures only from the flatbuffer's
``signature_defs_metadata`` entry (``tflite::GetSignatureDefMap``), never from the signature table
the converter writes. Without the entry the real server makes up a ``serving_default`` keyed by
tensor names (``serving_default_images``, batch 1), so a client sending the SavedModel's ``images``
is refused there. The entry is a flexbuffer map, signature key -> serialized ``SignatureDef``, laid
out as ``tensorflow/lite/tools/signature/signature_def_util.cc`` writes it (that tool is not in the
pip wheel). Each TensorInfo keeps the SavedModel's alias, dtype and shape and names the TFLite tensor
the converter's own signature table maps that alias to.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

SIGNATURE_DEFS_METADATA = "signature_defs_metadata"
SERVE_TAG = "serve"
BUFFER_ALIGNMENT = 16
"""The schema's ``force_align`` for buffer data, which the Python object API does not apply itself."""

# tflite::TensorType -> tensorflow DataType, the types TfLiteTypeToTfType maps.
_TF_DTYPE = {0: 1, 1: 19, 2: 3, 3: 4, 4: 9, 5: 7, 6: 10, 7: 5, 8: 8, 9: 6}


class SignatureMismatch(ValueError):
    """The converted model does not carry a signature the SavedModel has, or types differ."""


def savedmodel_signature_defs(savedmodel_dir: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """SignatureDefs ``keys`` of the ``serve`` meta graph, read from ``saved_model.pb``."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(savedmodel_dir) / "saved_model.pb").read_bytes())
    for meta in saved.meta_graphs:
        if SERVE_TAG in meta.meta_info_def.tags:
            missing = [k for k in keys if k not in meta.signature_def]
            if missing:
                raise SignatureMismatch(
                    f"SavedModel {savedmodel_dir} has no signature {missing} "
                    f"(it has {sorted(meta.signature_def)})"
                )
            return {k: meta.signature_def[k] for k in keys}
    raise SignatureMismatch(f"SavedModel {savedmodel_dir} has no meta graph tagged {SERVE_TAG!r}")


def tflite_signature_defs(content: bytes, savedmodel_defs: Mapping[str, Any]) -> dict[str, Any]:
    """``savedmodel_defs`` with each TensorInfo naming the TFLite tensor of its alias."""
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    tables = {}
    for i in range(model.SignatureDefsLength()):
        entry = model.SignatureDefs(i)
        tables[(entry.SignatureKey() or b"").decode()] = entry
    out: dict[str, Any] = {}
    for key, source in savedmodel_defs.items():
        if key not in tables:
            raise SignatureMismatch(f"the converted model has no signature {key!r} (it has {sorted(tables)})")
        entry = tables[key]
        subgraph = model.Subgraphs(entry.SubgraphIndex())
        written = meta_graph_pb2.SignatureDef(method_name=source.method_name)
        for side, count, get, target in (
            ("input", entry.InputsLength(), entry.Inputs, written.inputs),
            ("output", entry.OutputsLength(), entry.Outputs, written.outputs),
        ):
            tensor_of = {(get(i).Name() or b"").decode(): get(i).TensorIndex() for i in range(count)}
            wanted = source.inputs if side == "input" else source.outputs
            if set(tensor_of) != set(wanted):
                raise SignatureMismatch(
                    f"signature {key!r}: the converted model's {side}s are {sorted(tensor_of)}, "
                    f"the SavedModel's {sorted(wanted)}"
                )
            for alias, info in wanted.items():
                tensor = subgraph.Tensors(tensor_of[alias])
                dtype = _TF_DTYPE.get(tensor.Type())
                if dtype != info.dtype:
                    raise SignatureMismatch(
                        f"signature {key!r} {side} {alias!r}: the TFLite tensor has type {tensor.Type()}, "
                        f"the SavedModel's DataType {info.dtype}"
                    )
                target[alias].CopyFrom(info)
                target[alias].name = (tensor.Name() or b"").decode()
                if target[alias].HasField("tensor_shape") and not target[alias].tensor_shape.ByteSize():
                    # An empty message is a zero byte, where older readers (AsString().c_str()) cut the value.
                    target[alias].ClearField("tensor_shape")
        out[key] = written
    return out


def with_signature_defs(content: bytes, signature_defs: Mapping[str, Any]) -> bytes:
    """``content`` with its ``signature_defs_metadata`` entry set to ``signature_defs`` (replaced if
    present), as ``tflite::SetSignatureDefMap`` does."""
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    table = flexbuffers.Builder()
    with table.Map():
        for key in sorted(signature_defs):
            table.Key(key)
            # Builder.String takes text; a serialized proto is bytes, stored as a flexbuffer string.
            table._WriteBlob(
                signature_defs[key].SerializeToString(), append_zero=True, type_=flexbuffers.Type.STRING
            )
    data = np.frombuffer(bytes(table.Finish()), dtype=np.uint8)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    existing = [m for m in model.metadata or [] if _name(m.name) == SIGNATURE_DEFS_METADATA]
    if existing:
        model.buffers[existing[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = SIGNATURE_DEFS_METADATA
        entry.buffer = len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    builder = _aligned_builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _name(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _aligned_builder(size: int) -> Any:
    """A flatbuffers Builder whose byte vectors (buffer data) start on 16-byte boundaries, as the
    converter writes them. flatbuffers comes with the [tf] extra, so it is imported here, not at the
    top: the light install imports this module's package without it."""
    import flatbuffers

    class AlignedBuilder(flatbuffers.Builder):
        def StartVector(self, elemSize: int, numElems: int, alignment: int) -> Any:
            if elemSize == 1:
                alignment = max(alignment, BUFFER_ALIGNMENT)
            return super().StartVector(elemSize, numElems, alignment)

    return AlignedBuilder(size)


def add_savedmodel_signatures(content: bytes, savedmodel_dir: Path, keys: tuple[str, ...]) -> bytes:
    """``content`` (converted from ``savedmodel_dir``) carrying the SavedModel's signatures ``keys``."""
    defs = tflite_signature_defs(content, savedmodel_signature_defs(savedmodel_dir, keys))
    return with_signature_defs(content, defs)
