"""The lean HTTP/1.1 client against a real asyncio server on loopback that answers with raw bytes,
so every framing case (Content-Length, chunked, close-delimited, errors, timeouts) is a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pytest_tfserving.load.http1 import Endpoint, Http1Client, HttpProtocolError

# handler(request_head, request_body, writer) -> keep the connection open?
Handler = Callable[[bytes, bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """Reads whole requests (Content-Length framed) and lets ``handler`` write any bytes back."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/models/m:predict"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                if not await self.handler(head, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: bytes = b'{"predictions": [1]}', status: str = "200 OK", extra: bytes = b"") -> bytes:
    length = str(len(body)).encode()
    head = b"HTTP/1.1 " + status.encode() + b"\r\nContent-Length: " + length + b"\r\n" + extra
    return head + b"\r\n" + body


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_content_length_responses_reuse_one_connection() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(ok(b"x" * len(body)))
        return True

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 4, {"Content-Type": "application/json"})
            statuses = [await client.post(b"abc" * n, 5.0) for n in range(1, 20)]
            await client.close()
            assert statuses == [200] * 19
            assert srv.connections == 1
            head, body = srv.requests[2]
            assert head.startswith(b"POST /v1/models/m:predict HTTP/1.1\r\n")
            assert b"Content-Type: application/json\r\n" in head and b"Host: 127.0.0.1:" in head
            assert body == b"abcabcabc"

    run(main())


def test_chunked_response_split_across_writes() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1a;ext=1\r\n" + b"y" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
        for i in range(0, len(raw), 7):  # dribble the bytes so every parser state meets a boundary
            w.write(raw[i:i + 7])
            await w.drain()
            await asyncio.sleep(0.001)
        return True

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 1)
            assert [await client.post(b"{}", 5.0) for _ in range(3)] == [200, 200, 200]
            await client.close()
            assert srv.connections == 1

    run(main())


def test_connection_close_and_close_delimited_bodies_open_new_connections() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        if body == b"close-header":
            w.write(ok(extra=b"Connection: close\r\n"))
        else:  # no length at all: the body ends when the server closes
            w.write(b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy, try later")
        return False

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 1)
            assert await client.post(b"close-header", 5.0) == 200
            assert await client.post(b"until-close", 5.0) == 503
            assert await client.post(b"close-header", 5.0) == 200
            await client.close()
            assert srv.connections == 3

    run(main())


def test_error_statuses_and_empty_bodies() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        if body == b"204":
            w.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            w.write(ok(b'{"error": "Servable not found"}', "404 Not Found"))
        return True

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 1)
            assert await client.post(b"204", 5.0) == 204
            assert await client.post(b"x", 5.0) == 404
            assert await client.post(b"204", 5.0) == 204
            await client.close()
            assert srv.connections == 1

    run(main())


def test_server_dying_mid_response_is_a_connection_error() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await w.drain()
        return False

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 1)
            with pytest.raises(ConnectionError, match="closed mid-response"):
                await client.post(b"x", 5.0)
            await client.close()

    run(main())


def test_garbage_is_a_protocol_error() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        w.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        return True

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 1)
            with pytest.raises(HttpProtocolError, match="bad status line"):
                await client.post(b"x", 5.0)
            await client.close()

    run(main())


def test_timeout_drops_the_connection_and_the_next_request_works() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        if body == b"slow":
            await asyncio.sleep(0.5)
        w.write(ok())
        return True

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 1)
            with pytest.raises(asyncio.TimeoutError):
                await client.post(b"slow", 0.05)
            assert await client.post(b"fast", 5.0) == 200  # not confused by the late answer
            await client.close()
            assert srv.connections == 2

    run(main())


def test_at_most_the_given_number_of_connections() -> None:
    async def handler(head: bytes, body: bytes, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        w.write(ok())
        return True

    async def main() -> None:
        async with RawServer(handler) as srv:
            client = Http1Client(srv.url, 2)
            statuses = await asyncio.gather(*(client.post(b"x", 5.0) for _ in range(12)))
            await client.close()
            assert statuses == [200] * 12
            assert srv.connections == 2

    run(main())


def test_refused_connection_raises_oserror() -> None:
    async def main() -> None:
        client = Http1Client("http://127.0.0.1:9/v1/models/m:predict", 1)
        with pytest.raises(OSError):
            await client.post(b"x", 2.0)
        await client.close()

    run(main())


def test_endpoint_parsing() -> None:
    assert Endpoint.parse("http://127.0.0.1:8501/v1/models/m:predict") == Endpoint(
        "127.0.0.1", 8501, "/v1/models/m:predict"
    )
    assert Endpoint.parse("http://example/x?y=1") == Endpoint("example", 80, "/x?y=1")
    with pytest.raises(ValueError, match="http://host:port/path"):
        Endpoint.parse("https://127.0.0.1:8501/")
    with pytest.raises(ValueError, match=r">= 1"):
        Http1Client("http://127.0.0.1:1/", 0)
