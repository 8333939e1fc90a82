"""WSGI apps (Flask, Django, …) under the replica's ASGI server, one thread hop each way.

a2wsgi's middleware hands every piece of a response (its start, each body chunk, the end) from the
worker thread to the event loop and waits for each: four loop↔thread round trips a request. Each
wakes a thread on another core while the GIL moves between them; a Flask ``ok`` cost the replica
~700 µs of CPU a request on 2 cores, ~470 µs with the process held on one core
(``benchmarks/serving.py``). Here a small request body is read on the loop before the app is
called, the app runs in a worker thread that keeps a response of known, small length, and the
loop sends it: one hop in, one out. A response without a Content-Length (a generator, server-sent
events) or a larger one streams chunk by chunk with back-pressure, its headers sent as soon as
the app starts it, as before.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import Body, build_environ

from floyd.container.serving.asgi import Message, Receive, Scope, Send, answered_non_http, read_body

INLINE_BODY = 1 << 20  # request bodies up to this are read before the app runs
KEEP_RESPONSE = 1 << 20  # responses with a Content-Length up to this are sent in one go


class WSGIApp:
    """The ASGI app that serves one WSGI callable from a pool of ``threads`` worker threads."""

    def __init__(self, app: Any, threads: int = 10) -> None:
        self.app = app
        # A thread pool: WSGI requests run side by side, not one at a time.
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await answered_non_http(scope, receive, send):
            return
        loop = asyncio.get_running_loop()
        environ = build_environ(scope, await request_body(scope, receive, loop))  # type: ignore[arg-type]
        exchange = Exchange(loop, send)
        call = functools.partial(contextvars.copy_context().run, exchange.run, self.app, environ)
        kept = await loop.run_in_executor(self.executor, call)
        if kept is not None:
            await send(kept[0])
            await send(kept[1])


async def request_body(scope: Scope, receive: Receive, loop: asyncio.AbstractEventLoop) -> Any:
    """``wsgi.input``: the body in memory when it is small (no hop per read), else read from the
    loop as the app asks for it."""
    length = -1
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    if not chunked and 0 <= length <= INLINE_BODY:
        return io.BytesIO(await read_body(receive) if length else b"")
    if not chunked and length < 0:
        return io.BytesIO(b"")
    return Body(loop, receive)  # type: ignore[arg-type]


class Exchange:
    """One request's response as the worker thread sees it: ``start_response``, ``write`` and
    the app's iterable, kept whole or streamed to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Send) -> None:
        self.loop, self.send = loop, send
        self.start: Message | None = None
        self.started = False  # the start has gone to the client: headers can no longer change
        self.streaming = False
        self.chunks: list[bytes] = []
        self.kept = 0  # bytes in chunks

    def run(self, app: Any, environ: Any) -> tuple[Message, Message] | None:
        """Call the app on this (worker) thread; the whole response when it was kept, else None."""
        iterable = app(environ, self.start_response)
        try:
            for chunk in iterable:
                if chunk:
                    self.write(chunk)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        if self.start is None:
            raise RuntimeError("the WSGI app returned without calling start_response")
        if self.streaming:
            self.post(self.start_message())
            self.post({"type": "http.response.body", "body": b""})
            return None
        return self.start, {"type": "http.response.body", "body": b"".join(self.chunks)}

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        if self.start is not None and exc_info is None:
            raise RuntimeError("start_response called twice without exc_info")
        raw = [(k.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for k, v in headers]
        self.start = {"type": "http.response.start", "status": int(status.split(" ", 1)[0]), "headers": raw}
        self.chunks.clear()
        self.kept = 0
        length = next((v for k, v in raw if k == b"content-length"), b"")
        if not (length.isdigit() and int(length) <= KEEP_RESPONSE):
            self.streaming = True
            self.post(self.start_message())  # headers now: a stream's client sees them before its first event
        return self.write

    def write(self, chunk: bytes) -> None:
        if not self.streaming:
            self.chunks.append(chunk)
            self.kept += len(chunk)
            if self.kept <= KEEP_RESPONSE:
                return
            self.streaming = True  # more than the Content-Length said: send what there is, go on streaming
            chunk = b"".join(self.chunks)
            self.chunks.clear()
            self.kept = 0
        self.post(self.start_message())
        self.post({"type": "http.response.body", "body": chunk, "more_body": True})

    def start_message(self) -> Message | None:
        """The start once (None after it went), so the streaming paths may ask for it each time."""
        if self.started or self.start is None:
            return None
        self.started = True
        return self.start

    def post(self, message: Message | None) -> None:
        """Send on the loop and wait for it (the transport's back-pressure reaches the app)."""
        if message is not None:
            asyncio.run_coroutine_threadsafe(self._send(message), self.loop).result()

    async def _send(self, message: Message) -> None:
        await self.send(message)
