"""Request bodies over ``BridgeApp.max_json_bytes`` answered 413 with the JSON error body.

Tornado reads a body whole before a handler sees it, and one over the server's
``max_body_size`` makes it drop the connection; configurable-http-proxy then tells the client
only "503". ``BodyGuard`` sits between the HTTP server and the router: a body declared (or,
chunked, found) too large is read and thrown away, then answered 413 with a message, so the
client, through the proxy, learns what happened. Nothing of it is kept in memory, and at most
``DRAIN_BYTES`` past the limit are read: beyond that tornado closes the connection after all.
Streaming routes (uploads) are passed through: they set their own limit per request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Iterable

from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

DRAIN_BYTES = 1 << 30  # read (and thrown away) past a limit so that the 413 reaches the client


def write_error(conn: httputil.HTTPConnection, status: int, message: str,
                headers: dict[str, str] | None = None) -> None:
    """The platform's one error body, written straight on a connection (no handler)."""
    body = json.dumps({"status": status, "message": message}).encode()
    out = httputil.HTTPHeaders({"Content-Type": "application/json; charset=UTF-8",
                                "Content-Length": str(len(body)), **(headers or {})})
    try:
        conn.write_headers(httputil.ResponseStartLine("HTTP/1.1", status, httputil.responses.get(status, "Unknown")),
                           out, body)
        conn.finish()
    except StreamClosedError:
        pass


class BodyGuard(httputil.HTTPServerConnectionDelegate):
    """Wraps the router: every request goes through a ``_Guarded`` delegate."""

    def __init__(self, inner: httputil.HTTPServerConnectionDelegate, limit: int, streaming: Iterable[str]) -> None:
        self.inner = inner
        self.limit = limit
        self.streaming = [re.compile(p + "$") for p in streaming]

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _Guarded(self, request_conn, self.inner.start_request(server_conn, request_conn))

    def on_close(self, server_conn: object) -> None:
        self.inner.on_close(server_conn)


class _Guarded(httputil.HTTPMessageDelegate):
    def __init__(self, guard: BodyGuard, conn: httputil.HTTPConnection, inner: httputil.HTTPMessageDelegate) -> None:
        self.guard, self.conn, self.inner = guard, conn, inner
        self.passthrough = False
        self.refused = False
        self.received = 0
        self.declared = 0

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        path = start_line.path.split("?", 1)[0] if isinstance(start_line, httputil.RequestStartLine) else ""
        if any(p.match(path) for p in self.guard.streaming):
            self.passthrough = True
            return self.inner.headers_received(start_line, headers)
        length = headers.get("Content-Length", "")
        self.declared = int(length) if length.isdigit() else 0
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        if (self.declared > self.guard.limit or chunked) and isinstance(self.conn, HTTP1Connection):
            self.conn.set_max_body_size(self.guard.limit + DRAIN_BYTES)  # read it here, counting
        if self.declared > self.guard.limit:
            self.refused = True
            return None
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.passthrough:
            return self.inner.data_received(chunk)
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > self.guard.limit:  # a chunked body that turned out too large
            self.refused = True
            self.inner.on_connection_close()  # the handler forgets what it buffered
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()
            return
        size = f"{self.declared} bytes" if self.declared else f"over {self.guard.limit} bytes"
        write_error(self.conn, 413, f"The request body is {size}; at most {self.guard.limit} bytes are accepted in "
                    "one request (a JSON body, or a request to an endpoint). Files go through the upload API "
                    "(`floyd data upload`), not in a JSON body.")

    def on_connection_close(self) -> None:
        if not self.refused or self.passthrough:
            self.inner.on_connection_close()
