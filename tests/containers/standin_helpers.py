"""Plain gRPC/REST predict calls and a readiness wait for the container tests (real wire traffic)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from typing import Any

import numpy as np

from pytest_tfserving.backends.container_wait import ContainerWatch
from pytest_tfserving.process.wait import ModelsAvailableWait, wait_until_ready

LABEL = "pytest-tfserving"
RUN_LABEL = "pytest-tfserving.test-run"
RUN_ID = uuid.uuid4().hex[:12]


def labels(run_id: str = RUN_ID) -> dict[str, str]:
    """The labels of every container these tests start directly (the leftover check filters on them)."""
    return {LABEL: "1", RUN_LABEL: run_id}


def ours(client: Any, run_id: str = RUN_ID) -> list[Any]:
    """Containers of run ``run_id`` still known to the engine, running or not."""
    return list(client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}))


def grpc_predict(target: str, model: str, images: np.ndarray) -> np.ndarray:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    with grpc.insecure_channel(target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    return np.asarray(tf.make_ndarray(response.outputs["output_0"]))


def rest_predict(rest_url: str, model: str, images: np.ndarray) -> np.ndarray:
    body = json.dumps({"instances": images.tolist()}).encode()
    request = urllib.request.Request(
        f"{rest_url}/v1/models/{model}:predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return np.asarray(json.loads(response.read())["predictions"], dtype=np.float32)


def wait_available(container: Any, rest_url: str, model: str, timeout_s: float) -> float:
    """Seconds until ``model`` is AVAILABLE; raises with the container log if it exits or times out."""
    start = time.monotonic()

    def log() -> str:
        return str(container.logs().decode(errors="replace"))

    wait_until_ready(
        ModelsAvailableWait(rest_url, [model]),
        timeout_s,
        ContainerWatch(container, log),
        log,
        subject=f"container {container.name}",
        log_label="container log",
        poll_s=0.25,
    )
    return time.monotonic() - start


class RestLoad:
    """Background REST predict requests (a few threads) while the test samples resources."""

    def __init__(self, rest_url: str, model: str, images: np.ndarray, threads: int = 2) -> None:
        self.errors: list[BaseException] = []
        self.requests = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(rest_url, model, images), daemon=True)
            for _ in range(threads)
        ]

    def _loop(self, rest_url: str, model: str, images: np.ndarray) -> None:
        while not self._stop.is_set():
            try:
                rest_predict(rest_url, model, images)
            except BaseException as exc:
                self.errors.append(exc)
                return
            with self._lock:
                self.requests += 1

    def __enter__(self) -> RestLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
