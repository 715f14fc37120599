"""TensorProto <-> numpy without TensorFlow ops on the hot path.

Parsing follows ``tensorflow::Tensor::FromProto`` (``tensor_content`` or the typed ``*_val`` field,
a short field repeats its last value); responses are written with the typed fields like TF Serving's
``AsProtoField``. Anything malformed becomes INVALID_ARGUMENT, never an exception that escapes.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from pytest_tfserving.embedded.errors import ServingError, invalid

MAX_ELEMENTS = 1 << 31
"""Refuse tensors claiming more elements than this (a huge shape must not allocate memory)."""

# DataType -> (numpy dtype, TensorProto field)
_DTYPES: dict[int, tuple[Any, str]] = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
    types_pb2.DT_HALF: (np.float16, "half_val"),
    types_pb2.DT_STRING: (np.object_, "string_val"),
}
_BY_NUMPY: dict[Any, int] = {np.dtype(v[0]): k for k, v in _DTYPES.items() if v[0] is not np.object_}


def dtype_name(dtype: int) -> str:
    """TensorFlow's short name ("float", "double", "string") used in TF Serving's messages."""
    name = types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)
    return name.removeprefix("DT_").lower()


def numpy_dtype(dtype: int) -> Any:
    """The numpy dtype of a TF DataType; INVALID_ARGUMENT for types we do not serve."""
    try:
        return np.dtype(_DTYPES[dtype][0])
    except KeyError:
        raise invalid(f"unsupported tensor dtype {dtype_name(dtype)}") from None


def tf_dtype(array: np.ndarray) -> int:
    if array.dtype.kind in ("U", "S", "O"):
        return types_pb2.DT_STRING
    try:
        return _BY_NUMPY[array.dtype]
    except KeyError:
        raise ServingError(grpc.StatusCode.INTERNAL, f"unsupported output dtype {array.dtype}") from None


def _num_elements(shape: tuple[int, ...], alias: str) -> int:
    count = 1
    for dim in shape:
        if dim < 0:
            raise invalid(f"tensor parsing error: {alias} (negative dimension {dim})")
        count *= dim
        if count > MAX_ELEMENTS:
            raise invalid(f"tensor parsing error: {alias} (shape {list(shape)} is too large)")
    return count


def to_numpy(proto: tensor_pb2.TensorProto, alias: str) -> np.ndarray:
    """Decode one request tensor; INVALID_ARGUMENT ("tensor parsing error: ALIAS") when malformed."""
    if proto.dtype not in _DTYPES:
        raise invalid(f"tensor parsing error: {alias} (unsupported dtype {dtype_name(proto.dtype)})")
    np_type, field = _DTYPES[proto.dtype]
    if proto.tensor_shape.unknown_rank:
        raise invalid(f"tensor parsing error: {alias} (unknown rank)")
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    count = _num_elements(shape, alias)
    if proto.tensor_content:
        if np_type is np.object_:
            raise invalid(f"tensor parsing error: {alias} (string tensors cannot use tensor_content)")
        dtype = np.dtype(np_type)
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise invalid(
                f"tensor parsing error: {alias} (tensor_content has {len(proto.tensor_content)} bytes, "
                f"shape {list(shape)} of {dtype_name(proto.dtype)} needs {count * dtype.itemsize})"
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    values = getattr(proto, field)
    given = len(values)
    if given > count:
        raise invalid(
            f"tensor parsing error: {alias} ({given} values for shape {list(shape)} of {count} elements)"
        )
    if np_type is np.object_:
        flat = np.empty(count, dtype=object)
        flat[:given] = list(values)
        if 0 < given < count:
            flat[given:] = values[-1]
        elif given == 0:
            flat[:] = b""
        return flat.reshape(shape)
    if proto.dtype == types_pb2.DT_HALF:
        flat = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.asarray(values, dtype=np_type)
    if given == count:
        return flat.reshape(shape)
    full = np.zeros(count, dtype=flat.dtype)
    if given:
        full[:given] = flat
        full[given:] = flat[-1]
    return full.reshape(shape)


def to_proto(array: np.ndarray, as_content: bool = False) -> tensor_pb2.TensorProto:
    """Encode one response tensor into the typed field, as TF Serving's Predict does; with
    ``as_content`` (--enable_serialization_as_tensor_content) as raw ``tensor_content`` bytes,
    except strings, which have no such encoding."""
    dtype = tf_dtype(array)
    proto = tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(d)) for d in array.shape]
        ),
    )
    if as_content and dtype != types_pb2.DT_STRING:
        proto.tensor_content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        return proto
    field = _DTYPES[dtype][1]
    flat = array.reshape(-1)
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    elif dtype == types_pb2.DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    else:
        getattr(proto, field).extend(flat.tolist())
    return proto
