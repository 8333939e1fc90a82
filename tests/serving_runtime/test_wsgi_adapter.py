"""The WSGI adapter of the replica (floyd.container.serving.wsgi): one thread hop each way for an
ordinary response, streaming for the rest, PEP 3333's corners kept. Runs the adapter on a real
event loop and worker threads, with an ASGI server's receive/send played by the test."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from floyd.container.serving import wsgi
from floyd.container.serving.wsgi import WSGIApp
from tests.support.loops import run_apart

Environ = dict[str, Any]


def scope(method: str = "GET", path: str = "/", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"",
            "http_version": "1.1", "headers": headers or [], "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5)}


def serve(app: Callable[..., Iterable[bytes]], sc: dict[str, Any], body: list[bytes] | None = None,
          on_send: Callable[[dict[str, Any]], None] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Run one request through WSGIApp; returns the messages sent and the thread→loop hops made
    (calls of ``call_soon_threadsafe``: how a worker thread hands anything to the loop)."""
    sent: list[dict[str, Any]] = []
    parts = list(body or [b""])

    async def receive() -> dict[str, Any]:
        chunk = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if on_send:
            on_send(message)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        hops = 0
        real = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal hops
            hops += 1
            return real(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        await WSGIApp(app, threads=2)(sc, receive, send)
        return hops

    hops = run_apart(main())
    return sent, hops


def ok_app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def test_an_ordinary_response_takes_one_hop_back_and_two_sends() -> None:
    sent, hops = serve(ok_app, scope())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and (b"content-length", b"2") in sent[0]["headers"]
    assert sent[1]["body"] == b"ok" and not sent[1].get("more_body")
    # a2wsgi needed 4: the start, the body and the end each waited for the loop, then the return.
    assert hops == 1


def test_the_app_runs_on_a_worker_thread_with_the_request_body() -> None:
    seen: dict[str, Any] = {}

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        seen["thread"] = threading.current_thread().name
        seen["body"] = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Length", "0")])
        return []

    sent, hops = serve(app, scope("POST", headers=[(b"content-length", b"10")]), [b"hello", b"world"])
    assert seen == {"thread": seen["thread"], "body": b"helloworld"} and seen["thread"].startswith("wsgi")
    assert sent[0]["status"] == 201 and sent[1]["body"] == b"" and hops == 1


def test_a_large_or_chunked_body_is_read_as_the_app_asks() -> None:
    big = b"x" * (wsgi.INLINE_BODY + 1)
    got: list[bytes] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        got.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Length", "0")])
        return []

    serve(app, scope("POST", headers=[(b"content-length", str(len(big)).encode())]), [big[:10], big[10:]])
    serve(app, scope("POST", headers=[(b"transfer-encoding", b"chunked")]), [b"a", b"b", b"c"])
    assert got == [big, b"abc"]
    assert isinstance(run_apart(wsgi.request_body(scope(), None, None)), io.BytesIO)  # type: ignore[arg-type]


def test_a_response_without_length_streams_each_chunk_as_it_comes() -> None:
    """Server-sent events: the headers and each event reach the client before the next is made."""
    delivered: list[bytes] = []
    produced: list[int] = []

    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        for i in range(3):
            produced.append(len(delivered))  # how many body chunks had been sent before this one
            yield f"data: {i}\n\n".encode()

    sent, _ = serve(app, scope(), on_send=lambda m: delivered.append(m.get("body", b"")))
    assert sent[0]["type"] == "http.response.start"
    assert produced == [1, 2, 3]  # the start, then every event, went out before the next was made
    assert [m["body"] for m in sent[1:]] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b""]
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, True, False]


def test_a_response_longer_than_kept_streams() -> None:
    size = wsgi.KEEP_RESPONSE + 10

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", str(size))])
        return [b"a" * (size - 10), b"b" * 10]

    sent, hops = serve(app, scope())
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"a" * (size - 10) + b"b" * 10
    assert sent[-1] == {"type": "http.response.body", "body": b""} and hops > 1


def test_a_response_that_outgrows_its_length_streams_what_it_has() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "4")])
        return [b"ab", b"c" * wsgi.KEEP_RESPONSE]

    sent, _ = serve(app, scope())
    assert sent[1] == {"type": "http.response.body", "body": b"ab" + b"c" * wsgi.KEEP_RESPONSE, "more_body": True}


def test_an_error_before_the_body_replaces_the_headers() -> None:
    """PEP 3333: start_response again with exc_info while nothing has been sent."""

    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        try:
            raise ValueError("late")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [("Content-Length", "4")], sys.exc_info())
        return [b"oops"]

    sent, _ = serve(app, scope())
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"oops"


def test_an_error_after_the_headers_went_out_is_raised() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [])
        yield b"first"
        try:
            raise ValueError("mid-stream")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [], sys.exc_info())

    with pytest.raises(ValueError, match="mid-stream"):
        serve(app, scope())


def test_the_iterable_is_closed_and_start_response_is_required() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Any:
            return iter([b"ok"])

        def close(self) -> None:
            closed.append(True)

    def app(environ: Environ, start_response: Callable[..., Any]) -> Body:
        start_response("200 OK", [("Content-Length", "2")])
        return Body()

    serve(app, scope())
    assert closed == [True]
    with pytest.raises(RuntimeError, match="start_response"):
        serve(lambda environ, start_response: [b"x"], scope())


def test_the_legacy_write_callable_is_kept_in_order() -> None:
    def app(environ: Environ, start_response: Callable[..., Any]) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", "6")])
        write(b"abc")
        return [b"def"]

    sent, hops = serve(app, scope())
    assert sent[1]["body"] == b"abcdef" and hops == 1
