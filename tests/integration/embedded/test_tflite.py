"""--prefer_tflite_model serves model.tflite as TF Serving 2.19.1 does: SignatureDefs from the model's
``signature_defs_metadata``, else a generated ``serving_default`` keyed by tensor names; requests of any
batch size resize the interpreter's inputs. The variants ``models.variants`` builds carry the
SavedModel's signature there, so they are served under the SavedModel's names."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from pytest_tfserving.embedded.tflite import signature_defs_from_model
from pytest_tfserving.models.tflite_signatures import with_signature_defs
from pytest_tfserving.models.variants import TFLITE_FILE, build_model_variant
from pytest_tfserving.serving.spec import TFLITE_VARIANTS
from tests.integration.embedded.embedded_helpers import http, predict_request, rest_predict


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


@pytest.fixture(scope="module")
def built_tflite(tiny_savedmodel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """model.tflite of every TFLite variant ``build_model_variant`` makes of the tiny SavedModel."""
    cache = tmp_path_factory.mktemp("variants")
    return {
        variant: (
            build_model_variant(tiny_savedmodel, name="tiny", variant=variant, cache_dir=cache).base_path
            / "1"
            / TFLITE_FILE
        ).read_bytes()
        for variant in TFLITE_VARIANTS
    }


@pytest.mark.parametrize("variant", sorted(TFLITE_VARIANTS))  # sorted: xdist workers collect alike
def test_built_variants_are_served_under_the_savedmodels_names(
    variant: str, start, model_dir: Path, built_tflite: dict[str, bytes]
) -> None:
    """What a user's ``inputs={"images": ...}`` needs on the real image: the server reports the
    names our variant's metadata holds, and answers a request that uses them."""
    content = built_tflite[variant]
    (model_dir / "1" / "model.tflite").write_bytes(content)
    server = start("--prefer_tflite_model=true")
    status, metadata = http("GET", f"{server.rest_url}/v1/models/tiny/metadata")
    assert status == 200
    reported = json.loads(metadata)["metadata"]["signature_def"]["signature_def"]
    assert list(reported) == ["serving_default"]
    assert list(reported["serving_default"]["inputs"]) == ["images"]
    assert list(reported["serving_default"]["outputs"]) == ["output_0"]
    (ours,) = signature_defs_from_model(content).values()
    for side, written in (("inputs", ours.inputs), ("outputs", ours.outputs)):
        assert {alias: info["name"] for alias, info in reported["serving_default"][side].items()} == {
            alias: info.name for alias, info in written.items()
        }
    images = np.random.default_rng(7).random((3, 8, 8, 3), dtype=np.float32)
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            predict_request(images), timeout=30
        )
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["output_0"]), _expected(content, images), rtol=1e-5, atol=1e-6
    )
