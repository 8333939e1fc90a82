"""The ASGI layer every runtime shares: small response helpers and the wrapper that adds
``/_floyd/ready`` and a fallback ``/openapi.json`` in front of the served app.

The wrapper answers ``/_floyd/*`` itself (the prefix is reserved for the platform) and hands
everything else to the app untouched, so an app's own routes, errors and ``/openapi.json``
(FastAPI's) reach the client as the app wrote them.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READY_PATH = "/_floyd/ready"
RESERVED_PREFIX = "/_floyd/"
OPENAPI_PATH = "/openapi.json"
PROXY_TOKEN_HEADER = b"x-floyd-proxy-token"


async def read_body(receive: Receive) -> bytes:
    """The whole request body (endpoints take JSON or form bodies, never streams)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_response(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> None:
    """One complete response; Content-Length is always set so pooled connections stay usable."""
    raw = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers or []]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, value: Any, headers: list[tuple[str, str]] | None = None
) -> None:
    body = json.dumps(value).encode()
    await send_response(send, status, body, [("Content-Type", "application/json"), *(headers or [])])


async def send_error(
    send: Send, status: int, message: str, headers: list[tuple[str, str]] | None = None, **extra: Any
) -> None:
    """The platform's one error body: ``{"status": 404, "message": "..."}``."""
    await send_json(send, status, {"status": status, "message": message, **extra}, headers)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def answered_non_http(scope: Scope, receive: Receive, send: Send) -> bool:
    """Lifespan and websocket scopes for runtimes that serve plain HTTP only: True when handled."""
    if scope["type"] == "lifespan":
        await lifespan_noop(receive, send)
        return True
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1000})
        return True
    return False


async def lifespan_noop(receive: Receive, send: Send) -> None:
    """Lifespan for runtimes whose start-up already happened before the port opened."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class FloydASGI:
    """Wraps a loaded app: readiness, the reserved prefix, and ``/openapi.json`` only where
    the app itself answers 404 (so FastAPI's own document passes through untouched)."""

    def __init__(self, app: ASGIApp, kind: str, openapi: Callable[[], dict[str, Any]],
                 proxy_token: str | None = None) -> None:
        self.app = app
        self.kind = kind
        self.openapi = openapi
        # Replicas listen on the host's loopback (host networking), where any process of the
        # machine could reach them: with a token set, only the Floyd proxy (which checked the
        # caller's API key) gets an answer.
        token = os.environ.get("FLOYD_PROXY_TOKEN", "") if proxy_token is None else proxy_token
        self.token = token.encode()

    def _from_proxy(self, scope: Scope) -> bool:
        given = b""
        kept = []
        for name, value in scope["headers"]:
            if name == PROXY_TOKEN_HEADER:
                given = value
            else:
                kept.append((name, value))
        scope["headers"] = kept  # the app never sees the token
        return hmac.compare_digest(given, self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self.token and not self._from_proxy(scope):
                await send_error(send, 403, "This replica answers only through the Floyd proxy: call the endpoint's "
                                            "URL (/services/floyd/endpoints/<owner>/<name>/) with an API key.")
                return
            path = scope["path"]
            if path == READY_PATH:
                await send_json(send, 200, {"status": "ready", "kind": self.kind})
                return
            if path.startswith(RESERVED_PREFIX) or path == RESERVED_PREFIX.rstrip("/"):
                await send_error(send, 404, f"{path} is reserved by the Floyd runtime")
                return
            if path == OPENAPI_PATH and scope["method"] in ("GET", "HEAD"):
                await self._openapi(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _openapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Ask the app first; serve ours only if it had no ``/openapi.json``."""
        state = {"swallow": False}

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 404:
                state["swallow"] = True
            if not state["swallow"]:
                await send(message)

        await self.app(scope, receive, guarded_send)
        if state["swallow"]:
            await send_json(send, 200, self.openapi())
