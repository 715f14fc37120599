"""A minimal HTTP/1.1 keep-alive client for one fixed endpoint: POST pre-built bytes, read the status.

Why not aiohttp: on a 2-core runner every microsecond of client CPU comes out of the server's share.
aiohttp builds a request object, header multidicts and a response object per call; here the request
head is built once per body and a response is parsed only as far as the status line, the framing
headers (Content-Length, Transfer-Encoding: chunked, Connection) and the body's end. Plain ``http``
only; callers use aiohttp for ``https``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

_MAX_HEAD = 64 * 1024


class HttpProtocolError(ConnectionError):
    """The peer sent something that is not an HTTP/1.1 response we can frame."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected an http://host:port/path URL, got {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(parts.hostname, parts.port or 80, path)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time (HTTP/1.1 without pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._status: int | None = None
        self._remaining: int | None = None  # body bytes still to come (Content-Length framing)
        self._chunked = False
        self._until_close = False
        self.reusable = True
        self.lost = False

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            self._advance()
        except HttpProtocolError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost finishes the response or fails it

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            if self._until_close and self._status is not None:
                self._waiter.set_result(self._status)
            else:
                self._waiter.set_exception(ConnectionError(f"connection closed mid-response ({exc})"))

    # -- requests --------------------------------------------------------------------------------
    def request(self, data: bytes) -> asyncio.Future[int]:
        """Send ``data`` (a whole request); the future gives the response status once the body is read."""
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._status = None
        self.transport.write(data)
        return self._waiter

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def _finish(self) -> None:
        waiter, status = self._waiter, self._status
        self._waiter = None
        self._status = None
        if waiter is not None and not waiter.done() and status is not None:
            waiter.set_result(status)

    def _advance(self) -> None:
        if self._waiter is None:
            if self._buf:
                raise HttpProtocolError("unsolicited bytes from the server")
            return
        if self._status is None and not self._read_head():
            return
        if self._chunked:
            if self._read_chunks():
                self._finish()
        elif self._until_close:
            self._buf.clear()
        else:
            assert self._remaining is not None
            take = min(self._remaining, len(self._buf))
            del self._buf[:take]
            self._remaining -= take
            if self._remaining == 0:
                self._finish()

    def _read_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_HEAD:
                raise HttpProtocolError("response head larger than 64 KiB")
            return False
        lines = bytes(self._buf[:end]).split(b"\r\n")
        del self._buf[: end + 4]
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise HttpProtocolError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = False
        keep_alive = parts[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise HttpProtocolError(f"bad Content-Length {value.strip()[:40]!r}") from None
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                token = value.strip().lower()
                keep_alive = token == b"keep-alive" or (keep_alive and token != b"close")
        self._status = status
        self.reusable = keep_alive
        self._chunked = chunked
        self._until_close = not chunked and length is None and status not in (204, 304) and status >= 200
        self._remaining = 0 if (length is None or status in (204, 304)) else length
        if self._until_close:
            self.reusable = False
        return True

    def _read_chunks(self) -> bool:
        """Consume complete chunks from the buffer; True once the last chunk and trailers are read."""
        while True:
            if self._remaining:
                take = min(self._remaining, len(self._buf))
                del self._buf[:take]
                self._remaining -= take
                if self._remaining:
                    return False
            line_end = self._buf.find(b"\r\n")
            if line_end < 0:
                return False
            line = bytes(self._buf[:line_end])
            if line == b"":  # the CRLF that ends the previous chunk's data
                del self._buf[:2]
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpProtocolError(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                trailer_end = self._buf.find(b"\r\n\r\n", line_end)
                if trailer_end == line_end:  # "0\r\n\r\n": no trailers
                    del self._buf[: line_end + 4]
                    return True
                if trailer_end < 0:
                    return False
                del self._buf[: trailer_end + 4]
                return True
            del self._buf[: line_end + 2]
            self._remaining = size


class Http1Client:
    """POST bodies to one URL over at most ``connections`` keep-alive connections.

    ``post`` returns the response status (int). Transport failures raise ``ConnectionError`` (or
    ``OSError`` from connect); a timeout raises ``asyncio.TimeoutError`` and drops that connection,
    since its response may still arrive. A failed request is never retried: a load generator that
    retried would send the server work nobody counts.
    """

    def __init__(self, url: str, connections: int, headers: dict[str, str] | None = None) -> None:
        if connections < 1:
            raise ValueError(f"connections must be >= 1, got {connections}")
        self._endpoint = Endpoint.parse(url)
        self._idle: list[_Connection] = []
        self._closed = False
        host = self._endpoint.host
        port = self._endpoint.port
        host_header = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head_prefix = (
            f"POST {self._endpoint.path} HTTP/1.1\r\nHost: {host_header}\r\n{extra}"
            "Connection: keep-alive\r\nContent-Length: "
        ).encode("latin-1")
        self._heads: dict[int, bytes] = {}
        self._slots = asyncio.Semaphore(connections)

    def _request_bytes(self, body: bytes) -> bytes:
        head = self._heads.get(len(body))
        if head is None:
            head = self._head_prefix + str(len(body)).encode() + b"\r\n\r\n"
            if len(self._heads) < 4096:
                self._heads[len(body)] = head
        return head + body

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self._endpoint.host, self._endpoint.port)
        return conn

    async def post(self, body: bytes, timeout_s: float) -> int:
        if self._closed:
            raise ConnectionError("client is closed")
        async with self._slots:
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if candidate.reusable and not candidate.lost:
                    conn = candidate
                    break
                self._drop(candidate)
            if conn is None:
                conn = await asyncio.wait_for(self._connect(), timeout_s)
            try:
                status = await asyncio.wait_for(conn.request(self._request_bytes(body)), timeout_s)
            except BaseException:
                self._drop(conn)
                raise
            if conn.reusable and not conn.lost and not self._closed:
                self._idle.append(conn)
            else:
                self._drop(conn)
            return status

    def _drop(self, conn: _Connection) -> None:
        if conn.transport is not None:
            conn.transport.close()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)
        await asyncio.sleep(0)  # let the transports run their close callbacks
