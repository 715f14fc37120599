"""Real flags the embedded server implements change what clients see, as in tensorflow_model_server:
--enable_serialization_as_tensor_content, --rest_api_enable_cors_support,
--enable_signature_method_name_check."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc, regression_pb2

from tests.integration.embedded.example_models import export_tf2_module


def test_tensor_content_cors_and_method_name_check(serve, half_plus_two: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    shutil.copytree(half_plus_two, tmp_path / "m" / "1")
    export_tf2_module(tmp_path / "tf2" / "1")
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "m" base_path: "{tmp_path / "m"}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "tf2" base_path: "{tmp_path / "tf2"}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    server = serve(
        f"--model_config_file={config}",
        "--enable_serialization_as_tensor_content=true",
        "--rest_api_enable_cors_support=true",
        "--enable_signature_method_name_check=true",
    )
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[2.0], [4.0]], dtype=tf.float32))
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name, regress.model_spec.signature_name = "tf2", "regress_x_to_y"
    regress.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        output = stub.Predict(request, timeout=30).outputs["y"]
        assert not output.float_val and output.tensor_content
        np.testing.assert_array_equal(tf.make_ndarray(output), [[3.0], [4.0]])
        try:
            stub.Regress(regress, timeout=30)
            raise AssertionError("a predict-method signature regressed despite the method name check")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details() == (
                "Expected regression signature method_name to be tensorflow/serving/regress. "
                "Was: tensorflow/serving/predict"
            )
    with urllib.request.urlopen(f"{server.rest_url}/v1/models/m", timeout=30) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Access-Control-Allow-Methods"] == "POST, GET"
    preflight = urllib.request.Request(
        f"{server.rest_url}/v1/models/m:predict", method="OPTIONS", headers={"Origin": "https://example.com"}
    )
    with urllib.request.urlopen(preflight, timeout=30) as response:
        assert response.status == 200
