"""The few TF Serving protobuf messages the load generator needs, encoded and decoded by hand.

Why not ``tensorflow_serving.apis``: importing it imports all of TensorFlow (seconds of start-up and
hundreds of MB per process, in every load worker), while a PredictRequest is a handful of fields. Field
numbers follow upstream's .proto files (predict.proto, classification.proto, regression.proto,
input.proto, model.proto, tensor.proto, tensor_shape.proto, get_model_metadata.proto, meta_graph.proto);
tests check the bytes against the real generated classes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
CLASSIFY_METHOD = "/tensorflow.serving.PredictionService/Classify"
REGRESS_METHOD = "/tensorflow.serving.PredictionService/Regress"
METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"

LOAD_METHODS: tuple[str, ...] = ("predict", "classify", "regress")
"""What a load can send: the REST URL's verb (``:predict``) and, capitalised, the gRPC method."""
GRPC_METHOD_PATH: dict[str, str] = {
    "predict": PREDICT_METHOD,
    "classify": CLASSIFY_METHOD,
    "regress": REGRESS_METHOD,
}

# tensorflow/core/framework/types.proto; names as TF Serving's REST metadata spells them.
DTYPE_BY_NAME: dict[str, int] = {
    "DT_FLOAT": 1,
    "DT_DOUBLE": 2,
    "DT_INT32": 3,
    "DT_UINT8": 4,
    "DT_INT16": 5,
    "DT_INT8": 6,
    "DT_STRING": 7,
    "DT_INT64": 9,
    "DT_BOOL": 10,
    "DT_UINT16": 17,
    "DT_HALF": 19,
    "DT_UINT32": 22,
    "DT_UINT64": 23,
}
NAME_BY_DTYPE: dict[int, str] = {v: k for k, v in DTYPE_BY_NAME.items()}
NUMPY_BY_NAME: dict[str, str] = {
    "DT_FLOAT": "<f4",
    "DT_DOUBLE": "<f8",
    "DT_INT32": "<i4",
    "DT_UINT8": "u1",
    "DT_INT16": "<i2",
    "DT_INT8": "i1",
    "DT_INT64": "<i8",
    "DT_BOOL": "?",
    "DT_UINT16": "<u2",
    "DT_HALF": "<f2",
    "DT_UINT32": "<u4",
    "DT_UINT64": "<u8",
}

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not the protobuf message we expected."""


# ----------------------------------------------------------------------------------------- encoding
def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _len_field(field: int, payload: bytes) -> bytes:
    return _key(field, _LEN) + _varint(len(payload)) + payload


def _varint_field(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + _varint(value)


def _model_spec(model_name: str, signature_name: str) -> bytes:
    out = _len_field(1, model_name.encode())
    if signature_name:
        out += _len_field(3, signature_name.encode())
    return out


def encode_tensor(array: np.ndarray, dtype_name: str) -> bytes:
    """A TensorProto: dtype, shape, then ``tensor_content`` (or ``string_val`` for DT_STRING)."""
    if dtype_name not in DTYPE_BY_NAME:
        raise WireError(f"unsupported dtype {dtype_name}; supported: {sorted(DTYPE_BY_NAME)}")
    shape = b"".join(_len_field(2, _varint_field(1, int(d))) for d in array.shape)
    out = _varint_field(1, DTYPE_BY_NAME[dtype_name]) + _len_field(2, shape)
    if dtype_name == "DT_STRING":
        for item in array.ravel():
            out += _len_field(8, item if isinstance(item, bytes) else str(item).encode())
    else:
        content = np.ascontiguousarray(array, dtype=np.dtype(NUMPY_BY_NAME[dtype_name])).tobytes()
        out += _len_field(4, content)
    return out


def encode_predict_request(
    model_name: str, signature_name: str, inputs: dict[str, tuple[np.ndarray, str]]
) -> bytes:
    """A serialized PredictRequest; ``inputs`` maps input name -> (array, TF dtype name)."""
    out = _len_field(1, _model_spec(model_name, signature_name))
    for name, (array, dtype_name) in inputs.items():
        entry = _len_field(1, name.encode()) + _len_field(2, encode_tensor(array, dtype_name))
        out += _len_field(2, entry)
    return out


def encode_example_request(model_name: str, signature_name: str, examples: list[bytes]) -> bytes:
    """A serialized ClassificationRequest or RegressionRequest (the two share their layout: model_spec
    1, input 2) whose ``Input.example_list`` holds ``examples``, each a serialized tf.Example."""
    example_list = b"".join(_len_field(1, example) for example in examples)
    return _len_field(1, _model_spec(model_name, signature_name)) + _len_field(2, _len_field(1, example_list))


def encode_metadata_request(model_name: str) -> bytes:
    return _len_field(1, _model_spec(model_name, "")) + _len_field(2, b"signature_def")


# ----------------------------------------------------------------------------------------- decoding
def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def iter_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varint/fixed fields, bytes for length-delimited ones."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire_type == _LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise WireError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == _I64:
            value, pos = struct.unpack_from("<q", data, pos)[0], pos + 8
        elif wire_type == _I32:
            value, pos = struct.unpack_from("<i", data, pos)[0], pos + 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
        yield field, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class TensorSpec:
    """One signature input: TF dtype name (e.g. "DT_FLOAT") and shape, -1 for unknown dimensions."""

    dtype: str
    shape: tuple[int, ...] | None  # None: unknown rank


def _decode_shape(data: bytes) -> tuple[int, ...] | None:
    dims: list[int] = []
    for field, value in iter_fields(data):
        if field == 2 and isinstance(value, bytes):
            size = 0
            for f, v in iter_fields(value):
                if f == 1 and isinstance(v, int):
                    size = _signed64(v)
            dims.append(size)
        elif field == 3 and value:
            return None
    return tuple(dims)


def _decode_tensor_info(data: bytes) -> TensorSpec:
    dtype, shape = 0, None
    for field, value in iter_fields(data):
        if field == 2 and isinstance(value, int):
            dtype = value
        elif field == 3 and isinstance(value, bytes):
            shape = _decode_shape(value)
    return TensorSpec(NAME_BY_DTYPE.get(dtype, f"DT_ENUM_{dtype}"), shape)


def _map_entries(data: bytes, field_no: int) -> Iterator[tuple[str, bytes]]:
    for field, value in iter_fields(data):
        if field == field_no and isinstance(value, bytes):
            key, val = "", b""
            for f, v in iter_fields(value):
                if f == 1 and isinstance(v, bytes):
                    key = v.decode()
                elif f == 2 and isinstance(v, bytes):
                    val = v
            yield key, val


def decode_signatures(metadata_response: bytes) -> dict[str, dict[str, TensorSpec]]:
    """Signature name -> input name -> TensorSpec, from a GetModelMetadataResponse."""
    signatures: dict[str, dict[str, TensorSpec]] = {}
    for key, any_bytes in _map_entries(metadata_response, 2):
        if key != "signature_def":
            continue
        sigmap = b"".join(v for f, v in iter_fields(any_bytes) if f == 2 and isinstance(v, bytes))
        for sig_name, sig_def in _map_entries(sigmap, 1):
            signatures[sig_name] = {
                name: _decode_tensor_info(info) for name, info in _map_entries(sig_def, 1)
            }
    return signatures
