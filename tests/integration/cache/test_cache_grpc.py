"""The cache in front of a real server: gRPC Predict to the embedded server, sync and asyncio.

The server's own request counter (Prometheus) proves that hits never reached it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import redis
import redis.asyncio

from pytest_tfserving.metrics.prometheus import REQUEST_COUNT, PrometheusScraper, counter_value
from pytest_tfserving.services.prediction_cache import (
    AsyncCachedPredictor,
    BytesCodec,
    CachedPredictor,
    bytes_key_fn,
)
from pytest_tfserving.services.redis_service import LocalRedis

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def served_ok(server: Any) -> float:
    scraper = PrometheusScraper(server.endpoints.prometheus_url)
    return counter_value(scraper.scrape_samples(), REQUEST_COUNT, {"model_name": "tiny", "status": "OK"})


def test_sync_grpc_predict_through_the_cache(embedded_server: Any, redis_server: LocalRedis,
                                             make_request: Callable[..., Any]) -> None:
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(embedded_server.endpoints.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        client = redis.Redis.from_url(redis_server.url)
        cached: CachedPredictor[Any, Any] = CachedPredictor(lambda r: stub.Predict(r, timeout=30), client)
        before = served_ok(embedded_server)
        direct = stub.Predict(make_request(0.5), timeout=30)
        first = cached(make_request(0.5))
        second = cached(make_request(0.5))
        other = cached(make_request(0.25))
    assert first.outputs["output_0"] == direct.outputs["output_0"] == second.outputs["output_0"]
    assert other.outputs["output_0"] != first.outputs["output_0"]
    assert sum(first.outputs["output_0"].float_val) == pytest.approx(1.0, abs=1e-4)  # softmax
    assert (cached.stats.hits, cached.stats.misses, cached.stats.errors) == (1, 2, 0)
    assert served_ok(embedded_server) - before == 3  # direct + two misses; the hit never reached it


def test_async_grpc_through_the_cache_survives_redis_loss(embedded_server: Any, redis_server: LocalRedis,
                                                          make_request: Callable[..., Any]) -> None:
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    async def scenario() -> None:
        async with grpc.aio.insecure_channel(embedded_server.endpoints.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=1.0)
            cached: AsyncCachedPredictor[Any, Any] = AsyncCachedPredictor(
                lambda r: stub.Predict(r, timeout=30), client, retry_after_s=0.0)
            requests = [make_request(v) for v in (0.1, 0.2, 0.1, 0.2, 0.1)]
            responses = [await cached(r) for r in requests]
            assert isinstance(responses[0], predict_pb2.PredictResponse)
            assert responses[0].outputs["output_0"] == responses[2].outputs["output_0"]
            assert (cached.stats.hits, cached.stats.misses) == (3, 2)
            redis_server.stop()
            answered = await asyncio.gather(*(cached(r) for r in requests))
            assert [a.outputs["output_0"] for a in answered] == [r.outputs["output_0"] for r in responses]
            assert cached.stats.errors == 5
            await client.aclose()

    asyncio.run(scenario())


def test_raw_bytes_grpc_as_the_load_generator_would(embedded_server: Any, redis_server: LocalRedis,
                                                    make_request: Callable[..., Any]) -> None:
    from tensorflow_serving.apis import predict_pb2

    body = make_request(0.5).SerializeToString(deterministic=True)

    async def scenario() -> tuple[bytes, bytes]:
        async with grpc.aio.insecure_channel(embedded_server.endpoints.grpc_target) as channel:
            call = channel.unary_unary(PREDICT)  # no (de)serializers: bytes in, bytes out
            client = redis.asyncio.Redis.from_url(redis_server.url)
            cached = AsyncCachedPredictor(lambda b: call(b, timeout=30), client,
                                          key_fn=bytes_key_fn("tiny"), codec=BytesCodec())
            first, second = await cached(body), await cached(body)
            assert (cached.stats.hits, cached.stats.misses) == (1, 1)
            await client.aclose()
            return first, second

    first, second = asyncio.run(scenario())
    assert first == second
    assert len(predict_pb2.PredictResponse.FromString(first).outputs["output_0"].float_val) == 10
