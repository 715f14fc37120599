"""--prefer_tflite_model serves model.tflite as TF Serving 2.19.1 does: SignatureDefs from the model's
``signature_defs_metadata``, else a generated ``serving_default`` keyed by tensor names; requests of any
batch size resize the interpreter's inputs."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from pytest_tfserving.embedded.tflite import SIGNATURE_DEFS_METADATA, signature_defs_from_model
from tests.integration.embedded.embedded_helpers import http, predict_request, rest_predict


def with_signature_defs(content: bytes, signature_defs: dict[str, meta_graph_pb2.SignatureDef]) -> bytes:
    """``content`` with a ``signature_defs_metadata`` entry, laid out as tensorflow/lite/tools/signature
    writes it (a flexbuffer map: key -> serialized SignatureDef)."""
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    builder = flexbuffers.Builder()
    with builder.Map():
        for key, signature in signature_defs.items():
            builder.Key(key)
            builder._WriteBlob(signature.SerializeToString(), append_zero=True, type_=flexbuffers.Type.STRING)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(builder.Finish()), dtype=np.uint8)
    model.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = SIGNATURE_DEFS_METADATA
    metadata.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), metadata]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@pytest.fixture(scope="module")
def tflite(tiny_savedmodel: Path) -> bytes:
    return bytes(tf.lite.TFLiteConverter.from_saved_model(str(tiny_savedmodel)).convert())


def _expected(tflite: bytes, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=tflite).get_signature_runner("serving_default")
    return np.concatenate([runner(images=images[i : i + 1])["output_0"] for i in range(len(images))])


def test_without_signature_defs_the_aliases_are_tensor_names(start, model_dir: Path, tflite: bytes) -> None:
    """What the real server does with a plain converter output: "serving_default_images", not "images"."""
    (model_dir / "1" / "model.tflite").write_bytes(tflite)
    server = start("--prefer_tflite_model=true", "--num_tflite_pools=2")
    status, metadata = http("GET", f"{server.rest_url}/v1/models/tiny/metadata")
    assert status == 200
    signature = json.loads(metadata)["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(signature["inputs"]) == ["serving_default_images"]
    assert [int(d["size"]) for d in signature["inputs"]["serving_default_images"]["tensor_shape"]["dim"]] == [
        1,
        8,
        8,
        3,
    ]
    images = np.random.default_rng(5).random((5, 8, 8, 3), dtype=np.float32)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_request(images)
        request.inputs["serving_default_images"].CopyFrom(request.inputs.pop("images"))
        response = stub.Predict(request, timeout=30)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(predict_request(images), timeout=30)  # the SavedModel's alias is not served
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (output,) = response.outputs.values()
    np.testing.assert_allclose(tf.make_ndarray(output), _expected(tflite, images), rtol=1e-5, atol=1e-6)


def test_signature_defs_metadata_names_the_aliases(start, model_dir: Path, tflite: bytes) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    (image,) = interpreter.get_input_details()
    (output,) = interpreter.get_output_details()
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["images"].name = image["name"]
    signature.inputs["images"].dtype = tf.float32.as_datatype_enum
    signature.outputs["output_0"].name = output["name"]
    signature.outputs["output_0"].dtype = tf.float32.as_datatype_enum
    content = with_signature_defs(tflite, {"serving_default": signature})
    assert signature_defs_from_model(content) == {"serving_default": signature}
    (model_dir / "1" / "model.tflite").write_bytes(content)
    server = start(
        "--prefer_tflite_model=true", "--num_tflite_pools=2", "--num_tflite_interpreters_per_pool=2"
    )

    images = np.random.default_rng(6).random((3, 8, 8, 3), dtype=np.float32)
    want = _expected(tflite, images)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(predict_request(images), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["output_0"]), want, rtol=1e-5, atol=1e-6)
    status, answer = rest_predict(server.rest_url, {"inputs": images.tolist()})
    assert status == 200
    np.testing.assert_allclose(np.array(answer["outputs"], np.float32), want, rtol=1e-5, atol=1e-6)
