"""The study's Redis cache of predictions, as a wrapper around any predict call (sync or asyncio).

A cache in front of the server is only a win if hits are cheap and a Redis outage costs nothing but
the cache: so every request is answered, Redis failures are counted (never raised), and hit/miss
latencies are totalled separately for the report.

Keys are ``key_prefix + sha256(model, version, signature, input bytes)``; inputs are serialized
deterministically (``SerializeToString(deterministic=True)`` for protos, canonical JSON for REST).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import redis
import redis.asyncio

from pytest_tfserving.tf_extra import require_tf_extra

DEFAULT_PREFIX = "pytest-tfserving:predict:"
DEFAULT_SIGNATURE = "serving_default"
REDIS_FAILURES: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def cache_key(
    model_name: str, version: str, signature_name: str, payload: bytes, key_prefix: str = DEFAULT_PREFIX
) -> str:
    """Redis key for one request; fields are length-prefixed so no two field splits collide."""
    digest = hashlib.sha256()
    signature = signature_name or DEFAULT_SIGNATURE
    for part in (model_name.encode(), version.encode(), signature.encode(), payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return key_prefix + digest.hexdigest()


def predict_request_key(request: Any, key_prefix: str = DEFAULT_PREFIX) -> str:
    """Key of a ``tensorflow_serving.apis.predict_pb2.PredictRequest``.

    Version is the number, ``label:NAME``, or ``latest`` when unset; the payload is the request without
    its model_spec (inputs and output_filter), serialized deterministically.
    """
    spec = request.model_spec
    if spec.HasField("version"):
        version = str(spec.version.value)
    elif spec.version_label:
        version = f"label:{spec.version_label}"
    else:
        version = "latest"
    rest = type(request)()
    rest.CopyFrom(request)
    rest.ClearField("model_spec")
    payload = rest.SerializeToString(deterministic=True)
    return cache_key(spec.name, version, spec.signature_name, payload, key_prefix)


def canonical_json(body: Any) -> bytes:
    """The same bytes for equal JSON values, whatever the key order or spacing."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class RestPredict:
    """A REST predict call: ``POST /v1/models/{model_name}[/versions/{version}]:predict`` with ``body``."""

    model_name: str
    body: Mapping[str, Any]
    version: int | str | None = None  # number, label, or None for latest


def rest_request_key(request: RestPredict, key_prefix: str = DEFAULT_PREFIX) -> str:
    """Key of a REST predict: signature from the body, inputs as canonical JSON."""
    signature = str(request.body.get("signature_name") or DEFAULT_SIGNATURE)
    inputs = {k: v for k, v in request.body.items() if k != "signature_name"}
    version = "latest" if request.version is None else str(request.version)
    return cache_key(request.model_name, version, signature, canonical_json(inputs), key_prefix)


def bytes_key_fn(
    model_name: str, version: int | str | None = None, signature_name: str = DEFAULT_SIGNATURE
) -> Callable[[bytes, str], str]:
    """Key function for pre-serialized request bodies (the load generator's pool) of one model.

    The body bytes are hashed as they are: equal inputs must be encoded by the same encoder (true of a
    request pool built once), since this skips the cost of parsing to canonicalise them.
    """
    version_text = "latest" if version is None else str(version)

    def key(body: bytes, key_prefix: str) -> str:
        return cache_key(model_name, version_text, signature_name, bytes(body), key_prefix)

    return key


class Codec(Protocol[Resp]):
    def dumps(self, response: Resp) -> bytes: ...

    def loads(self, data: bytes) -> Resp: ...


class ProtoCodec(Generic[Resp]):
    """Stores protobuf responses (e.g. ``PredictResponse``) as their wire bytes."""

    def __init__(self, message_type: Any) -> None:
        self.message_type = message_type

    def dumps(self, response: Resp) -> bytes:
        return bytes(response.SerializeToString())  # type: ignore[attr-defined]

    def loads(self, data: bytes) -> Resp:
        return self.message_type.FromString(data)


class BytesCodec:
    """Stores raw response bytes (a gRPC call made without deserializer, or an HTTP body)."""

    def dumps(self, response: bytes) -> bytes:
        return bytes(response)

    def loads(self, data: bytes) -> bytes:
        return bytes(data)


class JsonCodec:
    """Stores REST JSON responses (already-parsed dicts)."""

    def dumps(self, response: Any) -> bytes:
        return json.dumps(response, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


@dataclass
class CacheStats:
    """Counters of one cached predictor. Every request is exactly one of hit, miss or error."""

    hits: int = 0
    misses: int = 0
    errors: int = 0  # lookup failed or skipped (Redis down): served by the server without cache
    store_errors: int = 0  # a miss whose response could not be written to Redis
    hit_seconds: float = 0.0
    miss_seconds: float = 0.0  # misses and errors: lookup + server + store

    @property
    def requests(self) -> int:
        return self.hits + self.misses + self.errors

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    @property
    def mean_hit_ms(self) -> float | None:
        return 1000.0 * self.hit_seconds / self.hits if self.hits else None

    @property
    def mean_miss_ms(self) -> float | None:
        served = self.misses + self.errors
        return 1000.0 * self.miss_seconds / served if served else None

    def as_extra(self) -> dict[str, float]:
        """Figures for ``Measurement.extra`` (``cache_hit_ratio`` is a metric the judge knows)."""
        extra = {
            "cache_hit_ratio": self.hit_ratio,
            "cache_hits": float(self.hits),
            "cache_misses": float(self.misses),
            "cache_errors": float(self.errors),
            "cache_store_errors": float(self.store_errors),
        }
        if self.mean_hit_ms is not None:
            extra["cache_hit_mean_ms"] = self.mean_hit_ms
        if self.mean_miss_ms is not None:
            extra["cache_miss_mean_ms"] = self.mean_miss_ms
        return extra


def _check_client(client: Any) -> None:
    kwargs = client.get_connection_kwargs() if hasattr(client, "get_connection_kwargs") else {}
    if kwargs.get("decode_responses"):
        raise ValueError(
            "the prediction cache stores bytes: create its Redis client without decode_responses=True"
        )


class _CacheCore(Generic[Req, Resp]):
    """What both variants share: keys, codec, TTL, counters and the back-off after a Redis failure."""

    def __init__(
        self,
        key_fn: Callable[[Req, str], str] | None,
        codec: Codec[Resp] | None,
        ttl_s: float,
        key_prefix: str,
        retry_after_s: float,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0 seconds, got {ttl_s} (the study used 300)")
        self.ttl_ms = max(1, round(ttl_s * 1000))
        self.key_prefix = key_prefix
        self.retry_after_s = retry_after_s
        self._key_fn = key_fn
        if codec is None:
            require_tf_extra("the default PredictResponse codec", ("tensorflow_serving",))
            from tensorflow_serving.apis import predict_pb2

            codec = ProtoCodec(predict_pb2.PredictResponse)
        self.codec: Codec[Resp] = codec
        self.stats = CacheStats()
        self.last_error: BaseException | None = None
        self._skip_until = 0.0

    def key_for(self, request: Req) -> str:
        key_fn = self._key_fn or predict_request_key
        return key_fn(request, self.key_prefix)

    def _redis_usable(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, exc: BaseException) -> None:
        self.last_error = exc
        self._skip_until = time.monotonic() + self.retry_after_s

    def _decode(self, data: Any) -> Resp | None:
        """The cached response, or None when the stored bytes are unreadable (treated as a miss)."""
        try:
            return self.codec.loads(bytes(data))
        except Exception as exc:
            self.last_error = exc
            return None


class CachedPredictor(_CacheCore[Req, Resp]):
    """Sync wrapper: ``CachedPredictor(stub.Predict, redis.Redis(...))(request) -> response``.

    ``key_fn`` defaults to ``predict_request_key`` (PredictRequest protos) and ``codec`` to PredictResponse
    bytes; for REST use ``key_fn=rest_request_key, codec=JsonCodec()``, for raw bodies
    ``key_fn=bytes_key_fn(model_name), codec=BytesCodec()``. After a Redis failure, Redis is
    not tried again for ``retry_after_s`` (those requests count as errors) so an outage does not add a
    connect timeout to every request. Give the client a short ``socket_timeout`` for the same reason.
    Counters are plain ints: use one instance per thread (or the asyncio variant on one loop).
    """

    def __init__(
        self,
        predict: Callable[[Req], Resp],
        redis_client: redis.Redis,
        *,
        ttl_s: float = 300.0,
        key_prefix: str = DEFAULT_PREFIX,
        key_fn: Callable[[Req, str], str] | None = None,
        codec: Codec[Resp] | None = None,
        retry_after_s: float = 1.0,
    ) -> None:
        super().__init__(key_fn, codec, ttl_s, key_prefix, retry_after_s)
        self.predict = predict
        self.redis = redis_client
        _check_client(redis_client)

    def __call__(self, request: Req) -> Resp:
        start = time.perf_counter()
        key = self.key_for(request)
        looked_up = False
        if self._redis_usable():
            try:
                data = self.redis.get(key)
                looked_up = True
            except REDIS_FAILURES as exc:
                self._failed(exc)
            else:
                if data is not None and (cached := self._decode(data)) is not None:
                    self.stats.hits += 1
                    self.stats.hit_seconds += time.perf_counter() - start
                    return cached
        response = self.predict(request)
        if looked_up:
            self.stats.misses += 1
            try:
                self.redis.set(key, self.codec.dumps(response), px=self.ttl_ms)
            except REDIS_FAILURES as exc:
                self._failed(exc)
                self.stats.store_errors += 1
        else:
            self.stats.errors += 1
        self.stats.miss_seconds += time.perf_counter() - start
        return response


class AsyncCachedPredictor(_CacheCore[Req, Resp]):
    """asyncio wrapper for the load generator: ``await AsyncCachedPredictor(client.predict, r)(request)``.

    Same keys, counters and failure handling as ``CachedPredictor``, with ``redis.asyncio.Redis``.
    """

    def __init__(
        self,
        predict: Callable[[Req], Awaitable[Resp]],
        redis_client: redis.asyncio.Redis,
        *,
        ttl_s: float = 300.0,
        key_prefix: str = DEFAULT_PREFIX,
        key_fn: Callable[[Req, str], str] | None = None,
        codec: Codec[Resp] | None = None,
        retry_after_s: float = 1.0,
    ) -> None:
        super().__init__(key_fn, codec, ttl_s, key_prefix, retry_after_s)
        self.predict = predict
        self.redis = redis_client
        _check_client(redis_client)

    async def __call__(self, request: Req) -> Resp:
        start = time.perf_counter()
        key = self.key_for(request)
        looked_up = False
        if self._redis_usable():
            try:
                data = await self.redis.get(key)
                looked_up = True
            except REDIS_FAILURES as exc:
                self._failed(exc)
            else:
                if data is not None and (cached := self._decode(data)) is not None:
                    self.stats.hits += 1
                    self.stats.hit_seconds += time.perf_counter() - start
                    return cached
        response = await self.predict(request)
        if looked_up:
            self.stats.misses += 1
            try:
                await self.redis.set(key, self.codec.dumps(response), px=self.ttl_ms)
            except REDIS_FAILURES as exc:
                self._failed(exc)
                self.stats.store_errors += 1
        else:
            self.stats.errors += 1
        self.stats.miss_seconds += time.perf_counter() - start
        return response
