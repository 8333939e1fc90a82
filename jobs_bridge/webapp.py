"""The bridge's Tornado application: the route table, the OpenAPI document, the cookie secret and
the web application with its body guard. Apart from app.py so that the process's start-up order
and the shape of the web application are read (and changed) one at a time."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import yaml
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado import web
from tornado.routing import Router

from jobs_bridge import __version__
from jobs_bridge.bodylimit import BodyGuard
from jobs_bridge.handlers import API_MODULES, PAGE_MODULES, PROXY_HANDLERS
from jobs_bridge.handlers.base import NotFoundHandler
from jobs_bridge.services import BridgeServices
from jobs_bridge.storage.paths import StorageLayout

HERE = Path(__file__).parent


# Parameters that take the rest of the path, slashes included (an artifact's path, a route).
MULTI_SEGMENT = ("artifact_path", "route")


def template_to_regex(template: str) -> str:
    """``/api/v1/datasets/{owner}/{name}`` → a tornado pattern with named groups."""
    return re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{'.+' if m[1] in MULTI_SEGMENT else '[^/]+'})", template)


def route_table() -> list[tuple[str, type]]:
    """Every route as (OpenAPI-style template, handler), without the service prefix."""
    routes: list[tuple[str, type]] = []
    for module in API_MODULES + PAGE_MODULES:
        routes.extend(module.default_handlers)
    return routes


def openapi_document(service_prefix: str) -> dict[str, Any]:
    """openapi.yaml with this version and this installation's prefix as its server."""
    doc = yaml.safe_load((HERE / "openapi.yaml").read_text())
    doc["info"]["version"] = __version__
    doc["servers"] = [{"url": service_prefix.rstrip("/")}]
    return doc


def cookie_secret(layout: StorageLayout) -> bytes:
    """The bridge's cookie secret, made once (mode 0600) and kept under the storage root."""
    path = layout.secret_file("bridge_cookie_secret")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def make_web_app(services: BridgeServices, service_prefix: str, secret: bytes) -> web.Application:
    """Every API route and page under the prefix; unknown API paths answer a JSON 404."""
    prefix = service_prefix.rstrip("/")
    # One HubOAuth for the whole process: the OAuth callback handler uses the singleton, and
    # the PKCE state it needs lives in that object.
    hub_auth = HubOAuth.instance(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""), cache_max_age=60)
    handlers: list[Any] = [(prefix + template_to_regex(t), h) for t, h in route_table()]
    handlers += [(prefix + pattern, h) for pattern, h in PROXY_HANDLERS] + [(prefix + "/oauth_callback", HubOAuthCallbackHandler)]
    handlers.append((prefix + "/api/.*", NotFoundHandler))
    return web.Application(
        handlers,
        bridge=services,
        hub_auth=hub_auth,
        cookie_secret=secret,
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        static_url_prefix=prefix + "/static/",
        default_handler_class=NotFoundHandler,
        login_url=hub_auth.login_url,
        xsrf_cookies=True,
    )


def body_guard(router: Router, service_prefix: str, max_json_bytes: int) -> BodyGuard:
    """The router behind BodyGuard: bodies over max_json_bytes answer 413 (streaming uploads
    set their own limit)."""
    prefix = service_prefix.rstrip("/")
    streaming = [prefix + template_to_regex(t) for t, h in route_table() if getattr(h, "_stream_request_body", False)]
    return BodyGuard(router, max_json_bytes, streaming)
