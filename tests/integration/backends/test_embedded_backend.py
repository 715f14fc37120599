"""The embedded backend for real: a child process serving a tiny model over REST and gRPC."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from pytest_tfserving.backends.base import BackendError, ServerCrashed
from pytest_tfserving.backends.embedded import EmbeddedBackend
from pytest_tfserving.backends.local import LocalServer
from pytest_tfserving.process import cleanup
from pytest_tfserving.serving.spec import ModelSpec, ServerSpec

STARTUP_S = 120.0


@pytest.fixture
def server(tiny_model_dir: Path, tmp_path: Path) -> Iterator[LocalServer]:
    spec = ServerSpec(models=(ModelSpec("tiny", tiny_model_dir),))
    running = EmbeddedBackend().start(spec, tmp_path, STARTUP_S)
    try:
        yield running
    finally:
        running.stop()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_rest_and_grpc_answer_then_stop_leaves_no_process(server: LocalServer) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    assert server.endpoints.grpc_target.startswith("127.0.0.1:")
    assert server.endpoints.rest_url.startswith("http://127.0.0.1:")
    assert server.description.startswith("embedded (TF ")
    assert server.process in cleanup.registered()

    with urllib.request.urlopen(f"{server.endpoints.rest_url}/v1/models/tiny", timeout=10) as r:
        status = json.loads(r.read())
    assert status["model_version_status"][0]["state"] == "AVAILABLE"

    batch = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    body = json.dumps({"instances": batch.tolist()}).encode()
    request = urllib.request.Request(f"{server.endpoints.rest_url}/v1/models/tiny:predict", data=body)
    with urllib.request.urlopen(request, timeout=30) as r:
        rest_predictions = np.array(json.loads(r.read())["predictions"])
    assert rest_predictions.shape == (2, 10)

    grpc_request = predict_pb2.PredictRequest()
    grpc_request.model_spec.name = "tiny"
    grpc_request.inputs["images"].CopyFrom(tf.make_tensor_proto(batch))
    with grpc.insecure_channel(server.endpoints.grpc_target) as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(grpc_request, timeout=30)
    grpc_predictions = tf.make_ndarray(next(iter(reply.outputs.values())))
    np.testing.assert_allclose(grpc_predictions, rest_predictions, rtol=1e-4, atol=1e-5)

    assert "Running gRPC ModelServer at" in server.logs()
    sampler = server.resource_sampler()
    sampler.sample()
    assert sampler.sample().rss_mb > 10.0
    sampler.close()

    server.check_alive()
    pid = server.pid
    server.stop()
    assert _gone(pid)
    assert server.process not in cleanup.registered()


def test_killed_server_is_reported_with_its_log(server: LocalServer) -> None:
    os.kill(server.pid, signal.SIGKILL)
    server.process.popen.wait(timeout=30)
    with pytest.raises(ServerCrashed) as info:
        server.check_alive()
    message = str(info.value)
    assert f"-{int(signal.SIGKILL)}" in message
    assert "Running gRPC ModelServer at" in message  # the log tail is attached


def test_bad_model_path_fails_fast_with_log(tmp_path: Path) -> None:
    spec = ServerSpec(models=(ModelSpec("missing", tmp_path / "does-not-exist"),))
    with pytest.raises(BackendError) as info:  # exits (ServerCrashed) or never gets ready: both carry the log
        EmbeddedBackend().start(spec, tmp_path, 8.0)
    assert "last lines" in str(info.value)
    assert not [p for p in cleanup.registered() if "embedded" in repr(p)]
