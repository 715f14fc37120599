"""Scraper and process sampler against the embedded server: real predicts over REST and gRPC."""

from __future__ import annotations

import json
import math
import time
import urllib.request

import grpc
import numpy as np
import pytest

from pytest_tfserving.backends.local import LocalServer
from pytest_tfserving.metrics.errors import SamplingError
from pytest_tfserving.metrics.process import ProcessSampler
from pytest_tfserving.metrics.prometheus import (
    REQUEST_COUNT,
    PrometheusScraper,
    counter_value,
)

BODY = json.dumps({"instances": np.full((1, 8, 8, 3), 0.5).tolist()}).encode()


def rest_predicts(server: LocalServer, n: int) -> None:
    url = f"{server.endpoints.rest_url}/v1/models/tiny:predict"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(n):
        request = urllib.request.Request(url, data=BODY, headers={"Content-Type": "application/json"})
        with opener.open(request, timeout=30) as response:
            assert len(json.loads(response.read())["predictions"][0]) == 10


def grpc_predicts(server: LocalServer, n: int) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.full((1, 8, 8, 3), 0.5, np.float32)))
    with grpc.insecure_channel(server.endpoints.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(n):
            assert list(stub.Predict(request, timeout=30).outputs["output_0"].tensor_shape.dim)[1].size == 10


def scraper(server: LocalServer, entrypoint: str) -> PrometheusScraper:
    assert server.endpoints.prometheus_url is not None
    return PrometheusScraper(server.endpoints.prometheus_url,
                             labels={"model_name": "tiny", "entrypoint": entrypoint,
                                     "API": "Predict" if entrypoint == "GRPC" else "predict"})


def test_rest_predicts_show_up_exactly(embedded_server: LocalServer) -> None:
    rest = scraper(embedded_server, "REST")
    before, before_ok = rest.scrape(), counter_value(rest.scrape_samples(), REQUEST_COUNT, {"status": "OK"})
    rest_predicts(embedded_server, 7)
    after = rest.scrape()
    window = after.delta(before)
    assert window.count == 7
    assert after.series == 1
    assert 0 < window.quantile(0.5) <= window.quantile(0.99)
    assert window.mean() > 0 and window.mean_ms() == pytest.approx(window.mean() / 1000)
    assert window.sum == pytest.approx(window.mean() * 7)
    ok_now = counter_value(rest.scrape_samples(), REQUEST_COUNT, {"model_name": "tiny", "status": "OK"})
    assert ok_now - before_ok == 7


def test_grpc_predicts_counted_apart_from_rest(embedded_server: LocalServer) -> None:
    grpc_scraper, rest_scraper = scraper(embedded_server, "GRPC"), scraper(embedded_server, "REST")
    grpc_before, rest_before = grpc_scraper.scrape(), rest_scraper.scrape()
    grpc_predicts(embedded_server, 4)
    assert grpc_scraper.scrape().delta(grpc_before).count == 4
    assert rest_scraper.scrape().delta(rest_before).count == 0


def test_async_scrape_and_quiet_window(embedded_server: LocalServer) -> None:
    import asyncio

    rest = scraper(embedded_server, "REST")
    first = asyncio.run(rest.scrape_async())
    quiet = asyncio.run(rest.scrape_async()).delta(first)
    assert quiet.count == 0 and math.isnan(quiet.quantile_ms(0.5))


def test_wrong_path_names_the_monitoring_config(embedded_server: LocalServer) -> None:
    bad = PrometheusScraper(f"{embedded_server.endpoints.rest_url}/no/such/metrics")
    with pytest.raises(SamplingError, match="prometheus_config"):
        bad.scrape()


def test_process_sampler_sees_the_server_work(embedded_server: LocalServer) -> None:
    import psutil

    server = psutil.Process(embedded_server.pid)
    sampler = ProcessSampler(embedded_server.pid)
    cpu_before, wall_before = sum(server.cpu_times()[:2]), time.monotonic()
    sampler.sample()
    rest_predicts(embedded_server, 40)
    busy = sampler.sample()
    used = 100.0 * (sum(server.cpu_times()[:2]) - cpu_before) / (time.monotonic() - wall_before)
    assert busy.cpu_percent > 0.0
    assert abs(busy.cpu_percent - used) < 2.0 + 0.25 * used, f"read {busy.cpu_percent:.1f}%, used {used:.1f}%"
    assert busy.rss_mb > 100.0  # TensorFlow is loaded in there
