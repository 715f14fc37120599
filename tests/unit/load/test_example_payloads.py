"""Classify/Regress bodies from serialized tf.Example: the gRPC bytes parse with TF Serving's generated
classes, the REST JSON becomes the same Example through the embedded server's json_tensor reader, and
bad payloads or settings fail before a run with the fix."""

from __future__ import annotations

import json

import pytest

from pytest_tfserving.load.clients import predict_url
from pytest_tfserving.load.config import LoadConfig
from pytest_tfserving.load.example_payloads import decode_example, example_bodies
from pytest_tfserving.load.payloads import PayloadError, PayloadOptions, build_example_pool
from pytest_tfserving.load.wire import GRPC_METHOD_PATH

pytest.importorskip("tensorflow_serving.apis.classification_pb2")


def _example(**features: object) -> bytes:
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    for name, values in features.items():
        feature = example.features.feature[name]
        assert isinstance(values, list)
        if all(isinstance(v, bytes) for v in values):
            feature.bytes_list.value.extend(values)
        elif all(isinstance(v, float) for v in values):
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    return example.SerializeToString()


def _parsed(examples: list[bytes]) -> list[object]:
    from tensorflow.core.example import example_pb2

    return [example_pb2.Example.FromString(e) for e in examples]


EXAMPLES = [
    _example(x=[0.5], ids=[3, -7, 2**40], word=[b"caf\xc3\xa9"], raw=[b"\xff\x00"]),
    _example(x=[2.0, -1.25]),
]


@pytest.mark.parametrize("message", ["ClassificationRequest", "RegressionRequest"])
def test_grpc_bodies_parse_with_the_real_classes(message: str) -> None:
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    cls = getattr(classification_pb2 if message.startswith("Class") else regression_pb2, message)
    (body,) = example_bodies([EXAMPLES], "grpc", "m", "classify_x_to_y")
    request = cls.FromString(body)
    assert request.model_spec.name == "m"
    assert request.model_spec.signature_name == "classify_x_to_y"
    assert request.input.WhichOneof("kind") == "example_list"
    assert list(request.input.example_list.examples) == _parsed(EXAMPLES)  # map order is not fixed


def test_rest_json_is_read_back_into_the_same_examples() -> None:
    from pytest_tfserving.embedded.examples import example_from_json

    (body,) = example_bodies([EXAMPLES], "rest", "m", "regress_x_to_y")
    doc = json.loads(body)
    assert doc["signature_name"] == "regress_x_to_y"
    assert doc["examples"][0]["raw"] == [{"b64": "/wA="}]
    assert doc["examples"][1]["x"] == [2.0, -1.25]
    assert b'"x":[2.0,-1.25]' in body  # a whole float keeps its fraction: json_tensor reads it as float
    assert [example_from_json(row) for row in doc["examples"]] == _parsed(EXAMPLES)


def test_decode_example_reads_every_feature_kind() -> None:
    assert decode_example(EXAMPLES[0]) == {
        "x": [0.5], "ids": [3, -7, 2**40], "word": [b"caf\xc3\xa9"], "raw": [b"\xff\x00"],
    }
    assert decode_example(b"") == {}


def test_one_body_per_request_and_the_pool_knows_its_method() -> None:
    options = PayloadOptions(examples=[[EXAMPLES[0]], [EXAMPLES[1], EXAMPLES[0]]])
    pool = build_example_pool("regress", "grpc", "m", "regress_x_to_y", options)
    assert pool.method == "regress" and len(pool.bodies) == 2
    assert GRPC_METHOD_PATH[pool.method] == "/tensorflow.serving.PredictionService/Regress"
    assert predict_url("http://127.0.0.1:1/", "m", "classify") == "http://127.0.0.1:1/v1/models/m:classify"


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ([], "non-empty list with one entry per request"),
        ([EXAMPLES[0]], r"wrap a single example as \[example.SerializeToString\(\)\]"),
        ([[]], "Input is empty"),
        ([["text"]], "list of serialized tf.Example"),
        ([[b"\x0a\x05\x0a\x03"]], "not a serialized tf.Example"),
    ],
)
def test_bad_examples_are_refused_with_the_fix(examples: object, message: str) -> None:
    options = PayloadOptions(examples=examples)  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match=message):
        build_example_pool("classify", "rest", "m", "s", options)


def test_load_config_pairs_method_and_payloads() -> None:
    examples = PayloadOptions(examples=[[EXAMPLES[0]]])
    assert LoadConfig("127.0.0.1:1", "m", method="classify", payloads=examples).pool().method == "classify"
    with pytest.raises(ValueError, match="method must be one of predict, classify, regress"):
        LoadConfig("127.0.0.1:1", "m", method="Classify", payloads=examples)
    with pytest.raises(ValueError, match=r"pass payloads=PayloadOptions\(examples="):
        LoadConfig("127.0.0.1:1", "m", method="regress")
    with pytest.raises(ValueError, match="set method"):
        LoadConfig("127.0.0.1:1", "m", payloads=examples)
    with pytest.raises(PayloadError, match="not both"):
        PayloadOptions(inputs=[{"x": [1.0]}], examples=[[EXAMPLES[0]]])
