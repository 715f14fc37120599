"""Classify and Regress request bodies from serialized tf.Example payloads, built once before the run.

Users of tf.Example models hold their inputs as ``example.SerializeToString()``; gRPC bodies embed those
bytes as they are (``ClassificationRequest``/``RegressionRequest``, ``Input.example_list``). REST has
no serialized form: ``:classify``/``:regress`` take ``{"signature_name", "examples": [{feature:
values}]}``, so each Example is decoded here (by hand, without importing TensorFlow) into the JSON
that TF Serving's ``json_tensor.cc`` turns back into the same Example: floats with a fraction, int64 as
integers, bytes as UTF-8 strings or ``{"b64": ...}``.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence

from pytest_tfserving.load.wire import WireError, encode_example_request, iter_fields

FeatureValues = list[float] | list[int] | list[bytes]


class ExamplePayloadError(ValueError):
    """The given examples cannot be sent; the message says how to fix them."""


def check_examples(examples: Sequence[Sequence[bytes]]) -> list[list[bytes]]:
    """One list of serialized tf.Example per request; a bare ``bytes`` entry is refused with the fix."""
    if isinstance(examples, (bytes, str)) or len(examples) == 0:
        raise ExamplePayloadError(
            "examples must be a non-empty list with one entry per request, each a list of serialized "
            "tf.Example, e.g. examples=[[example.SerializeToString()]]"
        )
    requests: list[list[bytes]] = []
    for k, entry in enumerate(examples):
        if isinstance(entry, (bytes, bytearray, str)) or not all(isinstance(e, bytes) for e in entry):
            raise ExamplePayloadError(
                f"examples[{k}] must be a list of serialized tf.Example (bytes), one request's batch; "
                f"got {type(entry).__name__}: wrap a single example as [example.SerializeToString()]"
            )
        if len(entry) == 0:
            raise ExamplePayloadError(
                f"examples[{k}] is empty; TF Serving answers an empty input with INVALID_ARGUMENT "
                "'Input is empty.': give each request at least one example"
            )
        requests.append(list(entry))
    return requests


def _floats(value: int | bytes) -> list[float]:
    """FloatList.value: packed little-endian floats, or one fixed32 (iter_fields gives it as an int)."""
    if isinstance(value, bytes):
        if len(value) % 4:
            raise WireError("truncated packed floats")
        return [v[0] for v in struct.iter_unpack("<f", value)]
    return [struct.unpack("<f", struct.pack("<i", value))[0]]


def _unpack_varints(data: bytes) -> list[int]:
    """Int64List.value packed: varints, two's complement for negatives."""
    values: list[int] = []
    current, shift = 0, 0
    for byte in data:
        current |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            values.append(current - (1 << 64) if current >= 1 << 63 else current)
            current, shift = 0, 0
    if shift:
        raise WireError("truncated packed varints")
    return values


def _feature_values(feature: bytes) -> FeatureValues:
    """A tensorflow.Feature: bytes_list 1, float_list 2, int64_list 3, each with ``value`` 1."""
    values: FeatureValues = []
    for kind, payload in iter_fields(feature):
        if not isinstance(payload, bytes):
            raise WireError("Feature kind is not a message")
        if kind == 1:
            values = [v for f, v in iter_fields(payload) if f == 1 and isinstance(v, bytes)]
        elif kind == 2:
            floats: list[float] = []
            for f, v in iter_fields(payload):
                if f == 1:
                    floats.extend(_floats(v))
            values = floats
        elif kind == 3:
            ints: list[int] = []
            for f, v in iter_fields(payload):
                if f == 1:
                    ints.extend(_unpack_varints(v) if isinstance(v, bytes) else [_signed(v)])
            values = ints
    return values


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_example(data: bytes) -> dict[str, FeatureValues]:
    """Feature name -> values of a serialized tf.Example (Example.features 1 -> Features.feature 1)."""
    features: dict[str, FeatureValues] = {}
    try:
        for field, features_bytes in iter_fields(data):
            if field != 1 or not isinstance(features_bytes, bytes):
                continue
            for entry_field, entry in iter_fields(features_bytes):
                if entry_field != 1 or not isinstance(entry, bytes):
                    continue
                name = ""
                values: FeatureValues = []
                for f, v in iter_fields(entry):
                    if f == 1 and isinstance(v, bytes):
                        name = v.decode()
                    elif f == 2 and isinstance(v, bytes):
                        values = _feature_values(v)
                features[name] = values
    except (WireError, UnicodeDecodeError, struct.error) as exc:
        raise ExamplePayloadError(
            f"not a serialized tf.Example ({exc}); pass example.SerializeToString()"
        ) from None
    return features


def _json_value(value: float | int | bytes) -> object:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode()}
    return value  # a float keeps its fraction in JSON ("2.0"): json_tensor.cc reads it as a float


def example_json_body(signature_name: str, examples: Sequence[bytes]) -> bytes:
    """The ``:classify``/``:regress`` body carrying ``examples`` (serialized tf.Example)."""
    rows = [
        {name: [_json_value(v) for v in values] for name, values in decode_example(example).items()}
        for example in examples
    ]
    return json.dumps({"signature_name": signature_name, "examples": rows}, separators=(",", ":")).encode()


def example_bodies(
    examples: Sequence[Sequence[bytes]], protocol: str, model_name: str, signature_name: str
) -> tuple[bytes, ...]:
    """One pre-serialized body per request: gRPC ClassificationRequest/RegressionRequest bytes (the same
    for both) or REST JSON."""
    requests = check_examples(examples)
    if protocol == "grpc":
        return tuple(encode_example_request(model_name, signature_name, batch) for batch in requests)
    if protocol == "rest":
        return tuple(example_json_body(signature_name, batch) for batch in requests)
    raise ExamplePayloadError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")
