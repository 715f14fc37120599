"""Classify, Regress and MultiInference over gRPC, ``:classify``/``:regress`` over REST, on tf.Example
signatures, with TF Serving 2.19.1's results, status codes and error texts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from pytest_tfserving.embedded.launch import ServerProcess, embedded_command, start_server
from tests.integration.embedded.embedded_helpers import http
from tests.integration.embedded.example_models import export_tf2_module

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path) -> Iterator[ServerProcess]:
    """Model "m" (TF1 half_plus_two, version 5) and "tf2" (a tf.saved_model.save module, version 1)."""
    root = tmp_path_factory.mktemp("classify")
    shutil.copytree(half_plus_two, root / "m" / "5")
    export_tf2_module(root / "tf2" / "1")
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "m" base_path: "{root / "m"}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "tf2" base_path: "{root / "tf2"}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    process = start_server(embedded_command("--port=0", "--rest_api_port=0", f"--model_config_file={config}"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def stub(server: ServerProcess) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _examples(target: input_pb2.Input, *xs: float) -> None:
    for x in xs:
        target.example_list.examples.add().features.feature["x"].float_list.value.append(x)


def _classify(signature: str, *xs: float, model: str = "m") -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    _examples(request.input, *xs)
    return request


def _regress(signature: str, *xs: float, model: str = "m") -> regression_pb2.RegressionRequest:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    _examples(request.input, *xs)
    return request


def _error(call: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value.code(), info.value.details()


def test_classify_scores_and_labels(stub) -> None:
    reply = stub.Classify(_classify("classify_x_to_y", 2.0, 4.0), timeout=30)
    assert [[(c.label, c.score) for c in row.classes] for row in reply.result.classifications] == [
        [("", 3.0)],
        [("", 4.0)],
    ]
    assert (reply.model_spec.name, reply.model_spec.version.value) == ("m", 5)
    assert reply.model_spec.signature_name == "classify_x_to_y"
    labelled = stub.Classify(_classify("classify_with_labels", 2.0), timeout=30)
    assert [(c.label, c.score) for c in labelled.result.classifications[0].classes] == [
        ("low", -2.0),
        ("high", 3.0),
    ]


def test_regress_and_context(stub) -> None:
    assert [
        r.value for r in stub.Regress(_regress("regress_x_to_y", 2.0, 6.0), timeout=30).result.regressions
    ] == [
        3.0,
        5.0,
    ]
    request = _regress("regress_x_to_y")
    listed = request.input.example_list_with_context
    listed.context.features.feature["x"].float_list.value.append(8.0)  # every example inherits x
    listed.examples.add()
    assert [r.value for r in stub.Regress(request, timeout=30).result.regressions] == [6.0]


def test_tf2_predict_method_signature_regresses(stub) -> None:
    """TF2 exports say "predict" for every signature; without the method check it still regresses."""
    reply = stub.Regress(_regress("regress_x_to_y", 2.0, model="tf2"), timeout=30)
    assert [r.value for r in reply.result.regressions] == [6.0]


def test_multi_inference(stub) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)):
        task = request.tasks.add()
        task.model_spec.name = "m"
        task.model_spec.signature_name = signature
        task.method_name = method
    _examples(request.input, 2.0)
    reply = stub.MultiInference(request, timeout=30)
    assert reply.results[0].regression_result.regressions[0].value == 3.0
    assert reply.results[1].classification_result.classifications[0].classes[0].score == 3.0
    assert [r.model_spec.signature_name for r in reply.results] == ["regress_x_to_y", "classify_x_to_y"]
    assert all(r.model_spec.version.value == 5 for r in reply.results)


def test_grpc_errors_as_tf_serving(stub) -> None:
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert _error(stub.Classify, _classify("nope", 1.0)) == (
        invalid,
        "No signature was found with the name: nope",
    )
    code, text = _error(stub.Classify, _classify("serving_default", 1.0))
    assert code == invalid and text.startswith("No classification inputs found in SignatureDef: ")
    assert _error(stub.Regress, _regress("classify_with_labels", 1.0)) == (
        invalid,
        "Expected one output Tensor.",
    )
    assert _error(stub.Regress, _regress("regress_x_to_y")) == (invalid, "Input is empty.")
    assert _error(stub.Classify, classification_pb2.ClassificationRequest()) == (invalid, "Missing ModelSpec")
    assert _error(stub.Regress, _regress("regress_x_to_y", 1.0, model="absent")) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(absent)",
    )
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in (("m", "regress_x_to_y", REGRESS), ("m", "regress_x_to_y", REGRESS)):
        task = request.tasks.add()
        task.model_spec.name, task.model_spec.signature_name, task.method_name = model, signature, method
    _examples(request.input, 1.0)
    assert _error(stub.MultiInference, request) == (
        invalid,
        "Duplicate evaluation of signature: regress_x_to_y",
    )
    request.tasks[1].model_spec.name = "tf2"
    assert _error(stub.MultiInference, request)[1] == (
        "All ModelSpecs in a MultiInferenceRequest must access the same model name."
    )
    request.tasks[1].model_spec.name, request.tasks[1].method_name = "m", "tensorflow/serving/predict"
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    assert _error(stub.MultiInference, request) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict",
    )


def _rest(server: ServerProcess, path: str, body: Any) -> tuple[int, Any]:
    status, raw = http("POST", f"{server.rest_url}{path}", json.dumps(body).encode())
    return status, json.loads(raw)


def test_rest_classify_and_regress(server: ServerProcess) -> None:
    assert _rest(
        server, "/v1/models/m:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    ) == (
        200,
        {"results": [[["", 3.0]]]},
    )
    assert _rest(
        server,
        "/v1/models/m/versions/5:classify",
        {"signature_name": "classify_with_labels", "examples": [{"x": [2.0]}]},
    ) == (200, {"results": [[["low", -2.0], ["high", 3.0]]]})
    assert _rest(
        server,
        "/v1/models/m:regress",
        {"signature_name": "regress_x_to_y", "context": {"x": 4.0}, "examples": [{}, {}]},
    ) == (200, {"results": [4.0, 4.0]})


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"signature_name": "regress_x_to_y"}, 400, "When method is regress, key 'examples' is expected"),
        ({"signature_name": "regress_x_to_y", "examples": []}, 400, "'examples' value is an empty array"),
        ({"signature_name": "regress_x_to_y", "examples": [{"x": [1.0, "a"]}]}, 400, "expecting type: float"),
        ({"signature_name": 3, "examples": [{"x": 1.0}]}, 400, "'signature_name' key must be a string value"),
        (
            {"signature_name": "regress_x_to_y", "examples": [{"x": 1}]},
            400,
            "Data types don't match",
        ),  # int64
        (
            {"signature_name": "missing", "examples": [{"x": 1.0}]},
            400,
            "No signature was found with the name",
        ),
    ],
)
def test_rest_regress_errors(server: ServerProcess, body: Any, status: int, message: str) -> None:
    got_status, reply = _rest(server, "/v1/models/m:regress", body)
    assert got_status == status and message in reply["error"], reply
