"""A small HTTP/1.1 client for the proxy's hop to replicas: pooled keep-alive connections.

General-purpose clients (Tornado's opens a connection per request; aiohttp builds request,
response, tracing and cookie objects per call) cost more than everything else the proxy
does. The hop to a replica needs much less: one request on a kept-alive loopback connection,
the response head parsed, the body framed by Content-Length, chunked encoding or close.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

MAX_HEAD = 64 << 10  # bytes of status line + headers a replica may send
STREAM_CHUNK = 1 << 16
# Methods that mean the same when sent twice (RFC 9110 §9.2.2): one whose replica broke off
# before answering goes to another replica, as nginx's proxy_next_upstream does by default
# (the bridge's proxy, and HAProxy's slots through dataplane.config).
IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE")


class UpstreamError(Exception):
    """The replica could not be reached or broke off; ``sent`` says whether the request may
    have reached it (only unsent requests are safe to retry elsewhere)."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class UpstreamTimeout(UpstreamError):
    pass


def may_resend(exc: UpstreamError, method: str) -> bool:
    """Whether a request whose replica failed may go to another one: never after a timeout
    (the wait would double), and once it reached the replica only when sending it twice is
    harmless; no byte of the answer went to the client yet either way."""
    return not isinstance(exc, UpstreamTimeout) and (not exc.sent or method in IDEMPOTENT)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = False
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    length: int | None = None  # body bytes still to stream (None: until close, -1: chunked)
    _conn: Connection | None = None
    _pool: Pool | None = None
    _key: tuple[str, int] = ("", 0)
    _keep: bool = True
    streaming: bool = field(default=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The rest of a streamed body; the connection goes back to the pool at the end."""
        assert self._conn is not None and self._pool is not None
        reader = self._conn.reader
        try:
            if self.length == -1:
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";", 1)[0], 16)
                    if size == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                            pass
                        break
                    yield await reader.readexactly(size)
                    await reader.readexactly(2)
            elif self.length is None:
                while chunk := await reader.read(STREAM_CHUNK):
                    yield chunk
                self._keep = False
            else:
                left = self.length
                while left > 0:
                    chunk = await reader.read(min(left, STREAM_CHUNK))
                    if not chunk:
                        raise asyncio.IncompleteReadError(b"", left)
                    left -= len(chunk)
                    yield chunk
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self._keep = False
            raise UpstreamError(f"the replica broke off its answer: {exc!r}", True) from None
        finally:
            self._pool.release(self._key, self._conn, self._keep)
            self._conn = None


class Pool:
    """Idle connections per (host, port); each request takes one, or opens a new one."""

    def __init__(self, connect_timeout: float = 5.0, idle_timeout: float = 30.0) -> None:
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout  # below the replicas' keep-alive (75 s), so they never close first
        self.idle: dict[tuple[str, int], list[Connection]] = {}
        self.deadlines: dict[asyncio.Task, float] = {}
        self.expired: set[asyncio.Task] = set()
        self._sweeper: asyncio.Future | None = None

    def _take(self, key: tuple[str, int]) -> Connection | None:
        conns = self.idle.get(key)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if now - conn.idle_since < self.idle_timeout and not conn.writer.is_closing() \
                    and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    async def _open(self, key: tuple[str, int]) -> Connection:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(key[0], key[1], limit=MAX_HEAD),
                                                    self.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise UpstreamError(f"could not connect to {key[0]}:{key[1]}: {exc!r}", False) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(reader, writer)

    def release(self, key: tuple[str, int], conn: Connection, keep: bool) -> None:
        if keep and not conn.writer.is_closing():
            conn.used = True
            conn.idle_since = time.monotonic()
            self.idle.setdefault(key, []).append(conn)
        else:
            conn.close()

    def drop(self, host: str, port: int) -> None:
        """Close the idle connections to a replica that stopped."""
        for conn in self.idle.pop((host, port), []):
            conn.close()

    def close(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                conn.close()
        self.idle.clear()

    async def request(self, host: str, port: int, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | None, inline_limit: int = 1 << 20, timeout: float = 0) -> Response:
        """Send one request; the body comes back whole when it is at most ``inline_limit``
        bytes, else ``Response.chunks()`` streams it (and must be consumed). With ``timeout``,
        a replica that has not answered (head and inline body) in time gets UpstreamTimeout."""
        if not timeout:
            return await self._request(host, port, method, target, headers, body, inline_limit)
        task = asyncio.current_task()
        assert task is not None
        # One sweeper for all requests instead of a timer each (a timer per request costs
        # more than the rest of the bookkeeping together).
        self.deadlines[task] = time.monotonic() + timeout
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.ensure_future(self._sweep())
        try:
            return await self._request(host, port, method, target, headers, body, inline_limit)
        except asyncio.CancelledError:
            if task in self.expired:
                self.expired.discard(task)
                raise UpstreamTimeout(f"no answer within {timeout:g} s", True) from None
            raise
        finally:
            self.deadlines.pop(task, None)

    async def _sweep(self) -> None:
        while self.deadlines:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for task, deadline in list(self.deadlines.items()):
                if now > deadline and task not in self.expired:
                    self.expired.add(task)
                    task.cancel()

    async def _request(self, host: str, port: int, method: str, target: str, headers: list[tuple[str, str]],
                       body: bytes | None, inline_limit: int) -> Response:
        key = (host, port)
        payload = _encode(method, target, host, port, headers, body)
        for attempt in (0, 1):
            conn = self._take(key) if attempt == 0 else None
            if conn is None:
                conn = await self._open(key)
            try:
                conn.writer.write(payload)
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.CancelledError:
                conn.close()
                raise
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                conn.close()
                partial = isinstance(exc, asyncio.IncompleteReadError) and bool(exc.partial)
                # A kept-alive connection the replica closed while idle (nothing came back):
                # the request never reached the app, so it is safe to send it again on a new one.
                if conn.used and attempt == 0 and not partial:
                    continue
                raise UpstreamError(f"the replica closed the connection: {exc!r}", True) from None
            return await self._response(key, conn, method, head, inline_limit)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _response(self, key: tuple[str, int], conn: Connection, method: str, head: bytes,
                        inline_limit: int) -> Response:
        try:
            lines = head[:-4].decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            status = int(code)
        except ValueError:
            conn.close()
            raise UpstreamError(f"the replica sent an invalid status line: {head[:100]!r}", True) from None
        headers: list[tuple[str, str]] = []
        length: int | None = None
        chunked = False
        keep = version == "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            value = value.strip()
            lname = name.lower()
            if lname == "content-length":
                length = int(value)
            elif lname == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif lname == "connection":
                keep = "close" not in value.lower() if keep else "keep-alive" in value.lower()
            headers.append((name, value))
        resp = Response(status, reason, headers, _conn=conn, _pool=self, _key=key, _keep=keep)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.release(key, conn, keep)
            resp._conn = None
            return resp
        if chunked:
            resp.length, resp.streaming = -1, True
            return resp
        if length is not None and length <= inline_limit:
            try:
                resp.body = await conn.reader.readexactly(length)
            except asyncio.CancelledError:
                conn.close()
                raise
            except (OSError, asyncio.IncompleteReadError) as exc:
                conn.close()
                raise UpstreamError(f"the replica broke off its answer: {exc!r}", True) from None
            self.release(key, conn, keep)
            resp._conn = None
            return resp
        resp.length, resp.streaming = length, True
        return resp


def _encode(method: str, target: str, host: str, port: int, headers: list[tuple[str, str]],
            body: bytes | None) -> bytes:
    parts = [f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"]
    parts.extend(f"{k}: {v}\r\n" for k, v in headers)
    if body or method in ("POST", "PUT", "PATCH"):
        parts.append(f"Content-Length: {len(body or b'')}\r\n")
    parts.append("\r\n")
    data = "".join(parts).encode("latin-1")
    return data + body if body else data
