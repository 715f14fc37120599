"""tf.Example inputs of Classify/Regress/MultiInference, and their REST JSON, as TF Serving 2.19.1 has them.

``serialized_examples`` turns an ``Input`` into the string tensor the signature is fed (servables/
tensorflow/util.cc: a context is prepended to every example's bytes, which protobuf reads as a merge).
``input_from_json`` reads a ``:classify``/``:regress`` body (util/json_tensor.cc: numbers with a
fraction are floats, integers and booleans int64, strings and ``{"b64": ...}`` bytes) and the
``*_json`` writers write the ``results`` bodies, floats as ``WriteDecimal`` does. Pure functions.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from pytest_tfserving.embedded.errors import invalid

_INT64 = (-(2**63), 2**63 - 1)


def serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    """The ``[num_examples]`` string tensor of serialized Examples; INVALID_ARGUMENT "Input is empty."."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        rows = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        rows = [context + e.SerializeToString() for e in listed.examples]
    else:
        rows = []
    if not rows:
        raise invalid("Input is empty.")
    array = np.empty(len(rows), dtype=object)
    array[:] = rows
    return array


def _json_debug(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _add_value(value: Any, name: str, feature: feature_pb2.Feature) -> None:
    """AddValueToFeature: one JSON value into ``feature``; its kind is fixed by the first value."""

    def kind_is(kind: str) -> None:
        current = feature.WhichOneof("kind")
        if current is not None and current != kind:
            raise invalid(
                f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}"
            )

    if value is None or isinstance(value, list):
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
    if isinstance(value, bool):
        kind_is("int64_list")
        feature.int64_list.value.append(1 if value else 0)
    elif isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise invalid(f"Feature: {name} has element with unexpected JSON type: Object")
        kind_is("bytes_list")
        try:
            feature.bytes_list.value.append(base64.b64decode(value["b64"], validate=True))
        except (binascii.Error, ValueError):
            raise invalid("Unable to base64 decode") from None
    elif isinstance(value, str):
        kind_is("bytes_list")
        feature.bytes_list.value.append(value.encode())
    elif isinstance(value, float) or not _INT64[0] <= value < 2**64:  # rapidjson: a double
        kind_is("float_list")
        feature.float_list.value.append(float(value))
    else:
        kind_is("int64_list")
        if value > _INT64[1]:
            raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        feature.int64_list.value.append(value)


def example_from_json(value: Any) -> example_pb2.Example:
    """MakeExampleFromJsonObject: ``{"feature": value or [values]}`` -> Example."""
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {_json_type(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        feature = feature_pb2.Feature()
        for item in content if isinstance(content, list) else [content]:
            _add_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)
    return example


def parse_body(body: bytes) -> dict[str, Any]:
    """ParseJson: the request document, which must be an object."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise invalid(f"JSON Parse error: {exc}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_json_debug(doc)} Is not object")
    return doc


def signature_from_json(doc: dict[str, Any]) -> str:
    """FillSignature: the optional ``signature_name``, which must be a string."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {_json_debug(doc)} not formatted correctly. 'signature_name' key must be a "
            "string value."
        )
    return name


def input_from_json(doc: dict[str, Any], method: str) -> input_pb2.Input:
    """FillClassifyRegressRequestFromJson: ``context`` (optional) and ``examples`` -> Input."""
    request_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        request_input.example_list_with_context.context.CopyFrom(example_from_json(doc["context"]))
    examples = doc.get("examples")
    if "examples" not in doc:
        raise invalid(
            f"JSON Value: {_json_debug(doc)} When method is {method}, key 'examples' is expected and was "
            "not found"
        )
    if not isinstance(examples, list):
        raise invalid(f"JSON Value: {_json_debug(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid(f"JSON Value: {_json_debug(doc)} 'examples' value is an empty array")
    target = (
        request_input.example_list_with_context.examples
        if has_context
        else request_input.example_list.examples
    )
    for item in examples:
        target.add().CopyFrom(example_from_json(item))
    return request_input


def decimal(value: float) -> str:
    """WriteDecimal for a float32: shortest ``%g`` that round-trips, a ``.0`` for whole numbers."""
    value = float(np.float32(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    if float(np.float32(float(text))) != value:
        text = f"{value:.9g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def classification_json(result: classification_pb2.ClassificationResult) -> bytes:
    """MakeJsonFromClassificationResult: ``{"results": [[[label, score], ...], ...]}``."""
    if not result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    rows = [
        "[" + ", ".join(f"[{json.dumps(c.label)}, {decimal(c.score)}]" for c in item.classes) + "]"
        for item in result.classifications
    ]
    return ('{\n    "results": [\n        ' + ",\n        ".join(rows) + "\n    ]\n}").encode()


def regression_json(result: regression_pb2.RegressionResult) -> bytes:
    """MakeJsonFromRegressionResult: ``{"results": [value, ...]}``."""
    if not result.regressions:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    values = ", ".join(decimal(r.value) for r in result.regressions)
    return ('{\n    "results": [' + values + "]\n}").encode()
