"""gRPC and REST Predict clients behind one async interface: ``send(i) -> (ok, status)``.

Bodies come pre-serialized from the RequestPool and responses are read but never parsed, so the client
costs as little CPU per request as the libraries allow. Status names are gRPC code names ("OK",
"NOT_FOUND", ...) or HTTP status codes ("200", "404", ...); "timeout" and "connection" name failures of
the transport itself. A client is opened inside the running event loop (both libraries bind to it).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Protocol

from pytest_tfserving.load.http1 import Http1Client
from pytest_tfserving.load.payloads import RequestPool
from pytest_tfserving.load.wire import PREDICT_METHOD

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
        self._calls = [ch.unary_unary(PREDICT_METHOD) for ch in self._channels]

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


class RestClient:
    """Keep-alive connections, at most ``connections`` of them: our lean HTTP/1.1 client for ``http``
    (see ``http1``), aiohttp for ``https``."""

    _HEADERS: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}
    lean_http: ClassVar[bool] = True  # False: aiohttp for http too (benchmarks compare the two)

    def __init__(
        self, url: str, model_name: str, pool: RequestPool, timeout_s: float, connections: int
    ) -> None:
        import aiohttp

        if connections < 1:
            raise ValueError(f"connections must be >= 1, got {connections}")
        self._aiohttp = aiohttp
        self._pool = pool
        self._timeout_s = timeout_s
        self._url = f"{url.rstrip('/')}/v1/models/{model_name}:predict"
        self._lean = Http1Client(self._url, connections, self._HEADERS) if (
            self.lean_http and url.startswith("http://")
        ) else None
        if self._lean is not None:
            return
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def send(self, i: int) -> tuple[bool, str]:
        if self._lean is not None:
            try:
                status = await self._lean.post(self._pool.body(i), self._timeout_s)
            except asyncio.TimeoutError:
                return False, TIMEOUT
            except OSError:  # ConnectionError and refused/reset connects
                return False, CONNECTION
            return status == 200, str(status)
        try:
            async with self._session.post(self._url, data=self._pool.body(i), headers=self._HEADERS) as resp:
                await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            return False, TIMEOUT
        except self._aiohttp.ClientError:
            return False, CONNECTION
        return status == 200, str(status)

    async def close(self) -> None:
        if self._lean is not None:
            await self._lean.close()
        else:
            await self._session.close()


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
        return RestClient(target, model_name, pool, timeout_s, connections)
    raise ValueError(f"protocol must be 'grpc' or 'rest', got {protocol!r}")
