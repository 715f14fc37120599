"""gRPC and REST clients behind one async interface: ``send(i) -> (ok, status)``.

They call the method the RequestPool's bodies were built for (Predict, Classify or Regress; REST
``:predict``, ``:classify``, ``:regress``).

Bodies come pre-serialized from the RequestPool and responses are read but never parsed, so the client
costs as little CPU per request as the libraries allow. Status names are gRPC code names ("OK",
"NOT_FOUND", ...) or HTTP status codes ("200", "404", ...); "timeout" and "connection" name failures of
the transport itself. A client is opened inside the running event loop (both libraries bind to it).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from pytest_tfserving.load.http1 import Http1Client
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.wire import GRPC_METHOD_PATH

TIMEOUT = "timeout"
CONNECTION = "connection"


class Client(Protocol):
    async def send(self, i: int) -> tuple[bool, str]:
        """Send request ``i`` (the pool picks its body); never raises for server or transport errors."""
        ...

    async def close(self) -> None: ...


class GrpcClient:
    """grpc.aio over ``channels`` channels (each its own TCP connection), requests spread round-robin."""

    def __init__(self, target: str, pool: RequestPool, timeout_s: float, channels: int = 1) -> None:
        import grpc

        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self._grpc = grpc
        self._pool = pool
        self._timeout_s = timeout_s
        options = [
            ("grpc.use_local_subchannel_pool", 1),  # one connection per channel, not one shared
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
        ]
        self._channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
        self._calls = [ch.unary_unary(GRPC_METHOD_PATH[pool.method]) for ch in self._channels]

    async def send(self, i: int) -> tuple[bool, str]:
        try:
            await self._calls[i % len(self._calls)](self._pool.body(i), timeout=self._timeout_s)
        except self._grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == self._grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, TIMEOUT
            return False, code.name
        return True, "OK"

    async def close(self) -> None:
        await asyncio.gather(*(ch.close() for ch in self._channels))


def predict_url(base_url: str, model_name: str, method: str = "predict") -> str:
    """The REST URL of ``method`` ("predict", "classify", "regress") on ``model_name``."""
    return f"{base_url.rstrip('/')}/v1/models/{model_name}:{method}"


_JSON_HEADERS: dict[str, str] = {"Content-Type": "application/json"}


class HttpRestClient:
    """Our lean HTTP/1.1 client (see ``http1``) over at most ``connections`` keep-alive connections:
    the default for ``http://`` targets, since client CPU on a small runner is taken from the server."""

    def __init__(
        self, url: str, model_name: str, pool: RequestPool, timeout_s: float, connections: int
    ) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._http = Http1Client(predict_url(url, model_name, pool.method), connections, _JSON_HEADERS)

    async def send(self, i: int) -> tuple[bool, str]:
        try:
            status = await self._http.post(self._pool.body(i), self._timeout_s)
        except asyncio.TimeoutError:
            return False, TIMEOUT
        except OSError:  # ConnectionError and refused/reset connects
            return False, CONNECTION
        return status == 200, str(status)

    async def close(self) -> None:
        await self._http.close()


class AiohttpRestClient:
    """aiohttp with keep-alive connections, at most ``connections`` of them: for ``https://``."""

    def __init__(
        self, url: str, model_name: str, pool: RequestPool, timeout_s: float, connections: int
    ) -> None:
        import aiohttp

        if connections < 1:
            raise ValueError(f"connections must be >= 1, got {connections}")
        self._aiohttp = aiohttp
        self._pool = pool
        self._url = predict_url(url, model_name, pool.method)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def send(self, i: int) -> tuple[bool, str]:
        try:
            async with self._session.post(self._url, data=self._pool.body(i), headers=_JSON_HEADERS) as resp:
                await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            return False, TIMEOUT
        except self._aiohttp.ClientError:
            return False, CONNECTION
        return status == 200, str(status)

    async def close(self) -> None:
        await self._session.close()


# False: aiohttp for http:// too (benchmarks/load_vs_wrk.py measures the two side by side).
LEAN_HTTP = True


def open_client(
    protocol: str,
    target: str,
    model_name: str,
    pool: RequestPool,
    *,
    timeout_s: float,
    connections: int,
    channels: int = 1,
) -> Client:
    """Create the client for ``protocol``; call from inside the event loop that will use it."""
    if protocol == "grpc":
        return GrpcClient(target, pool, timeout_s, channels)
    if protocol == "rest":
        if not target.startswith(("http://", "https://")):
            raise ValueError(f"REST target must be a URL like http://127.0.0.1:8501, got {target!r}")
        lean = LEAN_HTTP and target.startswith("http://")
        rest = HttpRestClient if lean else AiohttpRestClient
        return rest(target, model_name, pool, timeout_s, connections)
    raise ValueError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")
