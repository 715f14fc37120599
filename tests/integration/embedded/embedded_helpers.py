"""Small client helpers for the embedded-server tests (plain HTTP and tensorflow-serving-api stubs)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import numpy as np
from tensorflow_serving.apis import predict_pb2


def http(method: str, url: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rest_predict(rest_url: str, payload: Any, model: str = "tiny") -> tuple[int, Any]:
    status, raw = http("POST", f"{rest_url}/v1/models/{model}:predict", json.dumps(payload).encode())
    return status, json.loads(raw)


def predict_request(images: np.ndarray, model: str = "tiny") -> predict_pb2.PredictRequest:
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    return request


def metric_value(page: str, name: str, labels: str = "") -> float:
    """The value of ``name{labels}`` on a Prometheus page (0 when absent)."""
    pattern = re.escape(f"{name}{{{labels}}}") + r" (\S+)"
    match = re.search(pattern, page)
    return float(match.group(1)) if match else 0.0


def metrics_page(rest_url: str) -> str:
    status, raw = http("GET", f"{rest_url}/monitoring/prometheus/metrics")
    assert status == 200
    return raw.decode()
