"""Our hand-written protobuf bytes against TensorFlow Serving's generated classes."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_tfserving.load.wire import (
    TensorSpec,
    WireError,
    decode_signatures,
    encode_metadata_request,
    encode_predict_request,
    iter_fields,
)

apis = pytest.importorskip("tensorflow_serving.apis.predict_pb2")


def test_predict_request_parses_with_the_real_classes() -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    ids = np.array([[1, -5]], dtype=np.int64)
    words = np.array([b"a", b"bc"], dtype=object)
    body = encode_predict_request(
        "tiny",
        "serving_default",
        {"images": (images, "DT_FLOAT"), "ids": (ids, "DT_INT64"), "words": (words, "DT_STRING")},
    )
    request = predict_pb2.PredictRequest.FromString(body)
    assert request.model_spec.name == "tiny"
    assert request.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["images"]), images)
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["ids"]), ids)
    assert list(tf.make_ndarray(request.inputs["words"])) == [b"a", b"bc"]


def test_metadata_round_trip_with_the_real_classes() -> None:
    from tensorflow.core.framework import tensor_shape_pb2, types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest.FromString(encode_metadata_request("tiny"))
    assert request.model_spec.name == "tiny" and list(request.metadata_field) == ["signature_def"]

    sigmap = get_model_metadata_pb2.SignatureDefMap()
    sig = sigmap.signature_def["serving_default"]
    info = sig.inputs["images"]
    info.name, info.dtype = "serving_default_images:0", types_pb2.DT_FLOAT
    info.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in (-1, 8, 8, 3)]
        )
    )
    other = sig.inputs["anything"]
    other.dtype = types_pb2.DT_STRING
    other.tensor_shape.unknown_rank = True
    sig.outputs["output_0"].dtype = types_pb2.DT_FLOAT
    sigmap.signature_def["other"].CopyFrom(meta_graph_pb2.SignatureDef())
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "tiny"
    response.metadata["signature_def"].Pack(sigmap)

    decoded = decode_signatures(response.SerializeToString())
    assert decoded == {
        "serving_default": {
            "images": TensorSpec("DT_FLOAT", (-1, 8, 8, 3)),
            "anything": TensorSpec("DT_STRING", None),
        },
        "other": {},
    }


def test_truncated_bytes_are_a_clear_error() -> None:
    body = encode_predict_request("tiny", "", {"x": (np.zeros(3, np.float32), "DT_FLOAT")})
    with pytest.raises(WireError, match="truncated"):
        list(iter_fields(body[:-3]))
    with pytest.raises(WireError, match="unsupported dtype"):
        encode_predict_request("tiny", "", {"x": (np.zeros(3), "DT_COMPLEX64")})
