"""request_latency is labelled as TF Serving labels it (gRPC "Predict", REST "predict", status and
metadata GETs under API ""), and ``serving.metric_labels`` selects only a load's own requests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc

from pytest_tfserving.metrics.prometheus import REQUEST_LATENCY, parse_text, select_histogram
from pytest_tfserving.serving.metric_labels import request_latency_labels
from tests.integration.embedded.conftest import MONITORING
from tests.integration.embedded.embedded_helpers import http, metrics_page


@pytest.fixture
def page(serve, half_plus_two: Path, tmp_path: Path) -> str:
    """The Prometheus page after 1 gRPC Predict, 1 gRPC Classify, 2 REST predicts, 3 GETs and 1 REST
    classify on "m"."""
    import tensorflow as tf

    shutil.copytree(half_plus_two, tmp_path / "m" / "1")
    (tmp_path / "monitoring.config").write_text(MONITORING)
    server = serve(
        "--model_name=m",
        f"--model_base_path={tmp_path / 'm'}",
        f"--monitoring_config_file={tmp_path / 'monitoring.config'}",
    )
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0]], dtype=tf.float32))
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name, classify.model_spec.signature_name = "m", "classify_x_to_y"
    classify.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(request, timeout=30)
        stub.Classify(classify, timeout=30)
    for _ in range(2):
        assert http("POST", f"{server.rest_url}/v1/models/m:predict", b'{"instances": [[1.0]]}')[0] == 200
    for path in ("/v1/models/m", "/v1/models/m/metadata", "/v1/models/m/versions/1"):
        assert http("GET", f"{server.rest_url}{path}")[0] == 200
    body = json.dumps({"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}]}).encode()
    assert http("POST", f"{server.rest_url}/v1/models/m:classify", body)[0] == 200
    return metrics_page(server.rest_url)


def _count(page: str, labels: dict[str, str]) -> float:
    return select_histogram(parse_text(page), REQUEST_LATENCY, labels).count


def test_api_labels_as_tf_serving_writes_them(page: str) -> None:
    assert _count(page, {"model_name": "m", "API": "Predict", "entrypoint": "GRPC"}) == 1
    assert _count(page, {"model_name": "m", "API": "Classify", "entrypoint": "GRPC"}) == 1
    assert _count(page, {"model_name": "m", "API": "predict", "entrypoint": "REST"}) == 2
    assert _count(page, {"model_name": "m", "API": "classify", "entrypoint": "REST"}) == 1
    assert _count(page, {"model_name": "m", "API": "", "entrypoint": "REST"}) == 3  # the GETs, as upstream
    assert _count(page, {"model_name": "m"}) == 8  # why a model-name-only selection is wrong


def test_request_latency_labels_select_only_the_loads_own_api(page: str) -> None:
    assert _count(page, request_latency_labels("m", "grpc")) == 1
    assert _count(page, request_latency_labels("m", "rest")) == 2
    assert _count(page, request_latency_labels("m", "rest", "classify")) == 1
    assert _count(page, request_latency_labels("m", "grpc", "classify")) == 1
    assert _count(page, request_latency_labels("m", "grpc", "regress")) == 0
