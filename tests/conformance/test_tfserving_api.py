"""What a TF Serving client sees, checked only through tensorflow-serving-api stubs and plain HTTP.

Runs against every server in conftest ("embedded", "binary", "docker"): whatever passes here for
the real server must pass for ours, so these tests pin the embedded server to TF Serving's behaviour.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

Server = Any  # conftest.Server: kind, grpc_target, rest_url, model, metrics_path


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


@pytest.fixture(scope="module")
def channel(server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as chan:
        grpc.channel_ready_future(chan).result(timeout=30)
        yield chan


def predict_request(model: str, images: np.ndarray, **spec: Any) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    return request


def test_model_status_grpc(server: Server, channel: grpc.Channel) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = server.model
    response = stub.GetModelStatus(request, timeout=10)
    assert [(s.version, s.state, s.status.error_code) for s in response.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)
    ]


def test_model_status_rest(server: Server) -> None:
    for path in (f"/v1/models/{server.model}", f"/v1/models/{server.model}/versions/1"):
        status, body = http("GET", server.rest_url + path)
        assert status == 200
        assert body == {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }


def test_model_status_unknown_is_not_found(server: Server, channel: grpc.Channel) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "no_such_model"
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelStatus(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    status, body = http("GET", f"{server.rest_url}/v1/models/{server.model}/versions/42")
    assert status == 404 and "error" in body


def _check_signature(sig: Any) -> None:
    assert dict(sig["inputs"]).keys() == {"images"}
    images = sig["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [int(d["size"]) for d in images["tensor_shape"]["dim"]] == [-1, 8, 8, 3]
    (output,) = sig["outputs"].values()
    assert [int(d["size"]) for d in output["tensor_shape"]["dim"]] == [-1, 10]
    assert sig["method_name"] == "tensorflow/serving/predict"


def test_metadata_grpc(server: Server, channel: grpc.Channel) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = server.model
    response = stub.GetModelMetadata(request, timeout=10)
    assert response.model_spec.name == server.model and response.model_spec.version.value == 1
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(sig_map)
    from google.protobuf import json_format

    _check_signature(
        json_format.MessageToDict(sig_map.signature_def["serving_default"], preserving_proto_field_name=True)
    )


def test_metadata_rest(server: Server) -> None:
    status, body = http("GET", f"{server.rest_url}/v1/models/{server.model}/metadata")
    assert status == 200
    assert body["model_spec"]["name"] == server.model and body["model_spec"]["version"] == "1"
    _check_signature(body["metadata"]["signature_def"]["signature_def"]["serving_default"])


def test_predict_grpc(server: Server, channel: grpc.Channel, expected: Any) -> None:
    images, want = expected
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(predict_request(server.model, images), timeout=30)
    assert response.model_spec.name == server.model
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["output_0"]), want, rtol=1e-4, atol=1e-6)
    pinned = stub.Predict(predict_request(server.model, images, version=1), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(pinned.outputs["output_0"]), want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda x: {"instances": x.tolist()}, id="row"),
        pytest.param(lambda x: {"instances": [{"images": i.tolist()} for i in x]}, id="row-named"),
        pytest.param(lambda x: {"inputs": x.tolist()}, id="columnar"),
        pytest.param(
            lambda x: {"inputs": {"images": x.tolist()}, "signature_name": "serving_default"},
            id="columnar-named",
        ),
    ],
)
def test_predict_rest(server: Server, expected: Any, body: Any) -> None:
    images, want = expected
    payload = body(images)
    status, answer = http(
        "POST", f"{server.rest_url}/v1/models/{server.model}:predict", json.dumps(payload).encode()
    )
    assert status == 200, answer
    key = "predictions" if "instances" in payload else "outputs"
    assert list(answer) == [key]
    np.testing.assert_allclose(np.array(answer[key], dtype=np.float32), want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("unknown model", grpc.StatusCode.NOT_FOUND),
        ("unknown version", grpc.StatusCode.NOT_FOUND),
        ("wrong input name", grpc.StatusCode.INVALID_ARGUMENT),
        ("wrong dtype", grpc.StatusCode.INVALID_ARGUMENT),
        ("wrong shape", grpc.StatusCode.INVALID_ARGUMENT),
        ("unknown signature", grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_predict_grpc_errors(
    server: Server, channel: grpc.Channel, change: str, code: grpc.StatusCode
) -> None:
    images = np.zeros((1, 8, 8, 3), np.float32)
    request = predict_request(server.model, images)
    if change == "unknown model":
        request.model_spec.name = "no_such_model"
    elif change == "unknown version":
        request.model_spec.version.value = 42
    elif change == "wrong input name":
        request.inputs["pictures"].CopyFrom(request.inputs["images"])
        del request.inputs["images"]
    elif change == "wrong dtype":
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(images.astype(np.float64)))
    elif change == "wrong shape":
        # a rank the convolution cannot take (servers feed shapes as sent; the op refuses this one)
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((8, 8, 3), np.float32)))
    elif change == "unknown signature":
        request.model_spec.signature_name = "no_such_signature"
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=30)
    assert caught.value.code() == code
    assert caught.value.details()


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/models/no_such_model:predict", b'{"instances": [[1.0]]}', 404),
        ("/v1/models/{m}/versions/42:predict", b'{"instances": [[1.0]]}', 404),
        ("/v1/models/{m}:predict", b"this is not json", 400),
        ("/v1/models/{m}:predict", b'{"instances": [{"pictures": [[[0.0, 0.0, 0.0]]]}]}', 400),
        ("/v1/models/{m}:predict", b'{"instances": [["a", "b"]]}', 400),
        ("/v1/models/{m}:predict", b'{"signature_name": "nope", "instances": [[1.0]]}', 400),
        ("/v1/models/{m}:predict", b'{"something": 1}', 400),
    ],
)
def test_predict_rest_errors(server: Server, path: str, body: bytes, status: int) -> None:
    got, answer = http("POST", server.rest_url + path.format(m=server.model), body)
    assert got == status
    assert isinstance(answer, dict) and isinstance(answer.get("error"), str) and answer["error"]


def test_prometheus_metrics(server: Server, channel: grpc.Channel, expected: Any) -> None:
    images, _ = expected
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    stub.Predict(predict_request(server.model, images), timeout=30)
    http(
        "POST",
        f"{server.rest_url}/v1/models/{server.model}:predict",
        json.dumps({"instances": images.tolist()}).encode(),
    )
    status, page = http("GET", server.rest_url + server.metrics_path)
    assert status == 200 and isinstance(page, str)
    m = server.model
    assert f':tensorflow:serving:request_count{{model_name="{m}",status="OK"}}' in page
    assert "# TYPE :tensorflow:serving:request_latency histogram" in page
    assert (
        f':tensorflow:serving:request_latency_bucket{{model_name="{m}",API="Predict",entrypoint="GRPC",le="10"}}'
        in page
    )
    assert (
        f':tensorflow:serving:request_latency_count{{model_name="{m}",API="Predict",entrypoint="GRPC"}}'
        in page
    )
    assert "# TYPE :tensorflow:serving:runtime_latency histogram" in page
    assert (
        f':tensorflow:serving:runtime_latency_count{{model_name="{m}",API="Predict",runtime="TF1"}}' in page
    )
