"""CachedPredictor / AsyncCachedPredictor against a real redis-server: hits, TTL, keys, outages.

The "server" here is a plain function that computes a real PredictResponse from the request (the
cache's contract is only "call it on a miss"); gRPC through the embedded server is in test_cache_grpc.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from pytest_tfserving.services.prediction_cache import (
    AsyncCachedPredictor,
    BytesCodec,
    CachedPredictor,
    JsonCodec,
    RestPredict,
    bytes_key_fn,
    predict_request_key,
    rest_request_key,
)
from pytest_tfserving.services.redis_service import LocalRedis


class SumServer:
    """Answers with the sum of the input floats and counts how often it was asked."""

    def __init__(self, predict_pb2: Any) -> None:
        self.predict_pb2 = predict_pb2
        self.calls = 0

    def __call__(self, request: Any) -> Any:
        self.calls += 1
        response = self.predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        response.outputs["output_0"].float_val.append(sum(request.inputs["images"].float_val))
        return response

    async def async_call(self, request: Any) -> Any:
        await asyncio.sleep(0)
        return self(request)


def _client(service: LocalRedis, timeout_s: float = 0.5) -> redis.Redis:
    return redis.Redis.from_url(service.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


def test_hit_after_miss(redis_server: LocalRedis, predict_pb2: Any, make_request: Callable[..., Any]) -> None:
    server = SumServer(predict_pb2)
    cached = CachedPredictor(server, _client(redis_server))
    first = cached(make_request(0.5))
    second = cached(make_request(0.5))
    assert server.calls == 1
    assert second == first and second.outputs["output_0"].float_val[0] == pytest.approx(96.0)
    assert (cached.stats.hits, cached.stats.misses, cached.stats.errors) == (1, 1, 0)
    assert cached.stats.hit_ratio == 0.5
    assert cached.stats.mean_hit_ms is not None and cached.stats.mean_miss_ms is not None
    extra = cached.stats.as_extra()
    assert extra["cache_hit_ratio"] == 0.5 and extra["cache_hits"] == 1.0


def test_ttl_is_set_and_honoured(redis_server: LocalRedis, predict_pb2: Any,
                                 make_request: Callable[..., Any]) -> None:
    server = SumServer(predict_pb2)
    client = _client(redis_server)
    cached = CachedPredictor(server, client, ttl_s=0.4)
    request = make_request(0.25)
    cached(request)
    assert 0 < client.pttl(cached.key_for(request)) <= 400
    cached(request)
    assert server.calls == 1
    time.sleep(0.6)
    assert client.exists(cached.key_for(request)) == 0
    cached(request)
    assert server.calls == 2
    assert (cached.stats.hits, cached.stats.misses) == (1, 2)
    long_lived = CachedPredictor(server, client)  # default: the study's 300 s
    long_lived(make_request(0.75))
    assert 299_000 < client.pttl(long_lived.key_for(make_request(0.75))) <= 300_000


def test_keys_distinguish_inputs_models_versions_and_signatures(make_request: Callable[..., Any]) -> None:
    base = predict_request_key(make_request(0.5, version=1))
    assert predict_request_key(make_request(0.5, version=1)) == base
    assert predict_request_key(make_request(0.6, version=1)) != base
    assert predict_request_key(make_request(0.5, version=2)) != base
    assert predict_request_key(make_request(0.5)) != base  # unset version = latest
    assert predict_request_key(make_request(0.5, label="stable")) != predict_request_key(make_request(0.5))
    assert predict_request_key(make_request(0.5, version=1, model="other")) != base
    assert predict_request_key(make_request(0.5, version=1, signature="other")) != base
    # TF Serving treats an empty signature as serving_default: so does the key
    assert predict_request_key(make_request(0.5, version=1, signature="")) == base
    assert predict_request_key(make_request(0.5, version=1), "other-prefix:").startswith("other-prefix:")


def test_distinct_inputs_are_stored_under_distinct_keys(redis_server: LocalRedis, predict_pb2: Any,
                                                      make_request: Callable[..., Any]) -> None:
    server = SumServer(predict_pb2)
    client = _client(redis_server)
    cached = CachedPredictor(server, client, key_prefix="t:")
    for value in (0.1, 0.2, 0.3, 0.1):
        cached(make_request(value))
    cached(make_request(0.1, version=3))
    assert server.calls == 4
    assert len(client.keys("t:*")) == 4
    assert cached.stats.hits == 1


def test_rest_keys_use_canonical_json(redis_server: LocalRedis) -> None:
    calls: list[RestPredict] = []

    def rest_server(request: RestPredict) -> dict[str, Any]:
        calls.append(request)
        return {"predictions": [[sum(map(sum, request.body["instances"]))]]}

    cached = CachedPredictor(rest_server, _client(redis_server), key_fn=rest_request_key, codec=JsonCodec())
    a = RestPredict("tiny", {"signature_name": "serving_default", "instances": [[1.0, 2.0]]})
    b = RestPredict("tiny", {"instances": [[1.0, 2.0]]})  # same request, default signature, other layout
    assert cached(a) == cached(b) == {"predictions": [[3.0]]}
    assert len(calls) == 1
    assert rest_request_key(RestPredict("tiny", {"instances": [[1.0, 2.0]]}, version=2), "p:") != \
        rest_request_key(b, "p:")
    assert rest_request_key(RestPredict("tiny", {"inputs": {"x": [1], "y": [2]}}), "p:") == \
        rest_request_key(RestPredict("tiny", {"inputs": {"y": [2], "x": [1]}}), "p:")


def test_corrupt_entry_is_a_miss_not_a_crash(redis_server: LocalRedis, predict_pb2: Any,
                                             make_request: Callable[..., Any]) -> None:
    server = SumServer(predict_pb2)
    client = _client(redis_server)
    cached = CachedPredictor(server, client)
    request = make_request(0.9)
    client.set(cached.key_for(request), b"\xff\xff not a proto")
    assert cached(request).outputs["output_0"].float_val[0] == pytest.approx(0.9 * 192, rel=1e-5)
    assert (cached.stats.hits, cached.stats.misses, server.calls) == (0, 1, 1)
    assert cached(request) is not None and cached.stats.hits == 1  # overwritten with a good entry


def test_redis_killed_mid_run_requests_still_answered(redis_server: LocalRedis, predict_pb2: Any,
                                                      make_request: Callable[..., Any]) -> None:
    server = SumServer(predict_pb2)
    cached = CachedPredictor(server, _client(redis_server), retry_after_s=0.2)
    cached(make_request(0.5))
    cached(make_request(0.5))
    assert cached.stats.hits == 1
    os.kill(redis_server.pid, signal.SIGKILL)
    time.sleep(0.2)
    answers = [cached(make_request(0.5)) for _ in range(5)]
    assert all(a.outputs["output_0"].float_val[0] == pytest.approx(96.0) for a in answers)
    assert cached.stats.errors == 5 and cached.stats.hits == 1 and cached.stats.misses == 1
    assert server.calls == 6
    assert isinstance(cached.last_error, redis.ConnectionError)
    time.sleep(0.3)  # past the back-off: Redis is tried again, fails again, still answered
    cached(make_request(0.5))
    assert cached.stats.errors == 6


def test_stalled_redis_times_out_and_is_skipped(redis_server: LocalRedis, predict_pb2: Any,
                                                make_request: Callable[..., Any]) -> None:
    server = SumServer(predict_pb2)
    cached = CachedPredictor(server, _client(redis_server, timeout_s=0.2), retry_after_s=5.0)
    cached(make_request(0.5))
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        for _ in range(5):
            cached(make_request(0.5))
        elapsed = time.monotonic() - start
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
    assert cached.stats.errors == 5 and server.calls == 6
    assert isinstance(cached.last_error, redis.TimeoutError)
    assert elapsed < 2.0  # one timeout, then skipped during the back-off rather than 5 timeouts


def test_async_variant_hits_and_survives_outage(redis_server: LocalRedis, predict_pb2: Any,
                                                make_request: Callable[..., Any]) -> None:
    server = SumServer(predict_pb2)

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=0.5,
                                              socket_connect_timeout=0.5)
        cached = AsyncCachedPredictor(server.async_call, client, ttl_s=5, retry_after_s=0.0)
        results = await asyncio.gather(*(cached(make_request(v)) for v in (0.1, 0.2, 0.3)))
        again = await asyncio.gather(*(cached(make_request(v)) for v in (0.1, 0.2, 0.3)))
        assert again == results
        assert (cached.stats.hits, cached.stats.misses, server.calls) == (3, 3, 3)
        os.kill(redis_server.pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        answers = await asyncio.gather(*(cached(make_request(0.1)) for _ in range(4)))
        assert len(answers) == 4 and all(a == results[0] for a in answers)
        assert cached.stats.errors == 4 and server.calls == 7
        await client.aclose()

    asyncio.run(scenario())


def test_raw_bytes_variant_for_the_load_generator(redis_server: LocalRedis,
                                                  make_request: Callable[..., Any]) -> None:
    sent: list[bytes] = []

    async def call(body: bytes) -> bytes:
        sent.append(body)
        return b"response:" + body[-4:]

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        cached = AsyncCachedPredictor(call, client, key_fn=bytes_key_fn("tiny", 1), codec=BytesCodec())
        body = make_request(0.5).SerializeToString(deterministic=True)
        assert await cached(body) == await cached(body) == b"response:" + body[-4:]
        assert len(sent) == 1
        other_version = bytes_key_fn("tiny", 2)(body, cached.key_prefix)
        assert other_version != cached.key_for(body)
        await client.aclose()

    asyncio.run(scenario())


def test_bad_ttl_is_rejected(redis_server: LocalRedis, predict_pb2: Any) -> None:
    with pytest.raises(ValueError, match="ttl_s must be > 0"):
        CachedPredictor(SumServer(predict_pb2), _client(redis_server), ttl_s=0)


def test_decoding_client_is_refused_with_the_fix(redis_server: LocalRedis, predict_pb2: Any) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ValueError, match="without decode_responses=True"):
        CachedPredictor(SumServer(predict_pb2), client)
