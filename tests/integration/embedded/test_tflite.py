"""--prefer_tflite_model serves model.tflite through LiteRT interpreter pools."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.integration.embedded.embedded_helpers import http, predict_request, rest_predict


def test_tflite_model_is_served_from_pools(start, model_dir: Path, tiny_savedmodel: Path) -> None:
    tflite = tf.lite.TFLiteConverter.from_saved_model(str(tiny_savedmodel)).convert()
    (model_dir / "1" / "model.tflite").write_bytes(tflite)
    server = start(
        "--prefer_tflite_model=true", "--num_tflite_pools=2", "--num_tflite_interpreters_per_pool=2"
    )

    images = np.random.default_rng(5).random((5, 8, 8, 3), dtype=np.float32)
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=tflite).get_signature_runner("serving_default")
    want = np.concatenate([runner(images=images[i : i + 1])["output_0"] for i in range(len(images))])

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(predict_request(images), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["output_0"]), want, rtol=1e-5, atol=1e-6)
    status, answer = rest_predict(server.rest_url, {"inputs": images.tolist()})
    assert status == 200
    np.testing.assert_allclose(np.array(answer["outputs"], np.float32), want, rtol=1e-5, atol=1e-6)
    status, _ = http("GET", f"{server.rest_url}/v1/models/tiny/metadata")
    assert status == 200
    tflite_threads = [
        line for line in server.log().splitlines() if "tflite" in line.lower() and "error" in line.lower()
    ]
    assert not tflite_threads
