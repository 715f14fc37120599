"""Malformed requests of every kind get an error answer; the server keeps serving good requests."""

from __future__ import annotations

import contextlib
import json

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.integration.embedded.embedded_helpers import http, predict_request, rest_predict

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def _tensor(dtype: int, dims: list[int], **fields: object) -> tensor_pb2.TensorProto:
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims]
    )
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **fields)


def _bad_requests() -> list[predict_pb2.PredictRequest]:
    good = predict_request(np.zeros((1, 8, 8, 3), np.float32))
    tensors = [
        _tensor(types_pb2.DT_FLOAT, [1 << 40, 1 << 30]),  # huge shape, no data
        _tensor(types_pb2.DT_FLOAT, [-3, 8, 8, 3]),  # negative dimension
        _tensor(types_pb2.DT_FLOAT, [1, 8, 8, 3], tensor_content=b"\x00" * 7),  # truncated content
        _tensor(types_pb2.DT_FLOAT, [1, 8, 8, 3], float_val=[1.0] * 1000),  # too many values
        _tensor(types_pb2.DT_STRING, [1, 8, 8, 3], string_val=[b"x"]),  # strings for floats
        _tensor(types_pb2.DT_FLOAT, [0, 8, 8, 3]),  # empty batch
        _tensor(types_pb2.DT_FLOAT, []),  # scalar
        _tensor(types_pb2.DT_VARIANT, [1]),  # unsupported dtype
        tf.make_tensor_proto(np.zeros((1, 8, 8, 3), np.int64)),
        tf.make_tensor_proto(np.zeros((2, 8, 8), np.float32)),
    ]
    requests = []
    for tensor in tensors:
        request = predict_pb2.PredictRequest()
        request.CopyFrom(good)
        request.inputs["images"].CopyFrom(tensor)
        requests.append(request)
    extra = predict_pb2.PredictRequest()
    extra.CopyFrom(good)
    extra.inputs["extra"].CopyFrom(good.inputs["images"])
    requests.append(extra)
    filtered = predict_pb2.PredictRequest()
    filtered.CopyFrom(good)
    filtered.output_filter.append("nope")
    requests.append(filtered)
    requests.append(predict_pb2.PredictRequest())  # no model name: "ModelSpec has no name specified."
    unknown = predict_pb2.PredictRequest()
    unknown.CopyFrom(good)
    unknown.model_spec.name = "no_such_model"  # NOT_FOUND
    requests.append(unknown)
    return requests


def test_malformed_grpc_and_rest_requests_do_not_hurt_the_server(start) -> None:
    server = start("--grpc_max_threads=2", "--rest_api_num_threads=2")
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        codes = set()
        for request in _bad_requests():
            try:
                stub.Predict(request, timeout=30)
            except grpc.RpcError as error:
                codes.add(error.code())
        assert grpc.StatusCode.INVALID_ARGUMENT in codes and grpc.StatusCode.NOT_FOUND in codes
        assert grpc.StatusCode.INTERNAL not in codes and grpc.StatusCode.UNKNOWN not in codes

        raw = channel.unary_unary(PREDICT, request_serializer=None, response_deserializer=None)
        serialized = predict_request(np.zeros((1, 8, 8, 3), np.float32)).SerializeToString()
        for junk in (serialized[: len(serialized) // 2], b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f"):
            try:
                raw(junk, timeout=30)
            except grpc.RpcError as error:
                assert error.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)

        rng = np.random.default_rng(0)
        for _ in range(20):  # random bytes of random lengths
            with contextlib.suppress(grpc.RpcError):
                raw(rng.bytes(int(rng.integers(1, 300))), timeout=30)

        bodies = [
            b"",
            b"{",
            b"null",
            b"[]",
            b'"x"',
            b"{}",
            b'{"instances": {}}',
            b'{"instances": []}',
            b'{"instances": [[1, [2]]]}',
            b'{"instances": [null]}',
            b'{"instances": [true]}',
            b'{"inputs": {"images": "abc"}}',
            b'{"inputs": {"images": {"b64": "!!"}}}',
            b'{"instances": [1e999]}',
            b'{"instances": [123456789012345678901234567890]}',
            b'{"instances": [[[[0.0, 0.0, 0.0]]]], "inputs": []}',
            b'{"signature_name": 5, "instances": [1]}',
            b"[" * 100_000 + b"]" * 100_000,
            json.dumps({"instances": [[0.0] * 100_000]}).encode(),
            b'{"instances": [{"images": [1]}, {"other": [1]}]}',
            bytes(range(256)),
        ]
        for body in bodies:
            status, _ = http("POST", f"{server.rest_url}/v1/models/tiny:predict", body)
            assert 400 <= status < 500, body[:60]
        for method, path in [
            ("GET", "/v1/models/tiny:predict/x"),
            ("PUT", "/v1/models/tiny"),
            ("DELETE", "/v1/models/tiny"),
            ("GET", "/v1/nothing"),
            ("POST", "/v1/models/tiny"),
        ]:
            status, _ = http(method, server.rest_url + path, b"{}" if method != "GET" else None)
            assert 400 <= status < 500, (method, path)

        good = np.random.default_rng(1).random((2, 8, 8, 3), dtype=np.float32)
        response = stub.Predict(predict_request(good), timeout=30)
        assert tf.make_ndarray(response.outputs["output_0"]).shape == (2, 10)
    status, answer = rest_predict(server.rest_url, {"instances": good.tolist()})
    assert status == 200 and np.array(answer["predictions"]).shape == (2, 10)
    assert server.process.poll() is None
