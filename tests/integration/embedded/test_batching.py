"""Server-side batching really merges concurrent requests and splits results back correctly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from pytest_tfserving.embedded.batching import Batcher
from pytest_tfserving.embedded.errors import ServingError
from pytest_tfserving.embedded.metrics import Metrics
from pytest_tfserving.serving.spec import BatchingSpec
from tests.integration.embedded.embedded_helpers import metric_value, metrics_page, predict_request

BATCHING = """max_batch_size { value: 8 }
batch_timeout_micros { value: 200000 }
num_batch_threads { value: 1 }
max_enqueued_batches { value: 100 }
allowed_batch_sizes: 4
allowed_batch_sizes: 8
"""


def test_concurrent_requests_are_batched(start, tmp_path: Path, tiny_savedmodel: Path) -> None:
    params = tmp_path / "batching.config"
    params.write_text(BATCHING)
    server = start("--enable_batching", f"--batching_parameters_file={params}")
    rng = np.random.default_rng(3)
    images = [rng.random((1, 8, 8, 3), dtype=np.float32) for _ in range(16)]
    model = tf.saved_model.load(str(tiny_savedmodel)).signatures["serving_default"]
    want = [model(images=tf.constant(x))["output_0"].numpy() for x in images]

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        barrier = threading.Barrier(len(images))

        def call(x: np.ndarray) -> np.ndarray:
            barrier.wait()
            return tf.make_ndarray(stub.Predict(predict_request(x), timeout=60).outputs["output_0"])

        with ThreadPoolExecutor(len(images)) as pool:
            got = list(pool.map(call, images))
    for g, w in zip(got, want, strict=True):  # each caller got its own rows back
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)

    page = metrics_page(server.rest_url)
    batches = metric_value(page, ":tensorflow:serving:batching_session:wrapped_run_count")
    processed = metric_value(page, ":tensorflow:serving:batching_session:processed_batch_size_count")
    assert 0 < batches < len(images), page
    assert processed == batches
    # some batch held more than one request, and every batch was padded to an allowed size
    assert (
        metric_value(page, ":tensorflow:serving:batching_session:processed_batch_size_bucket", 'le="2"') == 0
    )
    assert metric_value(page, ":tensorflow:serving:batching_session:input_batch_size_count") == len(images)
    assert (
        ':tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name="batch_threads"}' in page
    )


def _doubler(gate: threading.Event, seen: list[int]):
    def run(signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        gate.wait(30)
        seen.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    return run


def test_batcher_pads_splits_and_refuses_when_full() -> None:
    """Scheduler semantics with a blocking runner: padding, splitting, and UNAVAILABLE when full."""
    gate, seen = threading.Event(), list[int]()
    spec = BatchingSpec(
        max_batch_size=4,
        batch_timeout_micros=1_000_000,
        num_batch_threads=1,
        max_enqueued_batches=1,
        allowed_batch_sizes=(4,),
    )
    batcher = Batcher(spec, _doubler(gate, seen), Metrics(), "batch_threads", 1)
    try:
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(batcher.submit, "s", {"x": np.array([[1.0]])})
            second = pool.submit(batcher.submit, "s", {"x": np.array([[2.0], [3.0]])})
            # the open batch (3 rows) is the one allowed enqueued batch: a 2-row task must open another
            while len(batcher._batches) != 1 or batcher._batches[0].size != 3:
                threading.Event().wait(0.01)
            with pytest.raises(ServingError) as caught:
                batcher.submit("s", {"x": np.array([[4.0], [5.0]])})
            assert caught.value.code == grpc.StatusCode.UNAVAILABLE
            gate.set()
            np.testing.assert_array_equal(first.result(10)["y"], [[2.0]])
            np.testing.assert_array_equal(second.result(10)["y"], [[4.0], [6.0]])
        assert seen == [4]  # 3 rows merged into one run, padded to the allowed size 4
        with pytest.raises(ServingError) as too_big:
            batcher.submit("s", {"x": np.zeros((5, 1))})
        assert too_big.value.code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        gate.set()
        batcher.stop()
