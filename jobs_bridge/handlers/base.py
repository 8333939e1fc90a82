"""The base handler: Hub authentication, one JSON error body, blocking work off the loop."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from jupyterhub.services.auth import HubAuth, HubOAuthenticated
from tornado import web

from jobs_bridge.auth.identity import Caller, Identity, identify
from jobs_bridge.errors import BadRequest, FloydError, TooManyRequests, translate
from jobs_bridge.services import BridgeServices
from jobs_bridge.validate import query_flag, whole_number

T = TypeVar("T")
log = logging.getLogger("jobs_bridge.handlers")


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Common behaviour of every bridge handler."""

    api = True
    allow_job_token = False  # only routes a job may call with its own token set this
    identity = Identity()

    @property
    def bridge(self) -> BridgeServices:
        services: BridgeServices = self.settings["bridge"]
        return services

    @property
    def hub_auth(self) -> HubAuth:  # one HubOAuth per process, from the settings
        auth: HubAuth = self.settings["hub_auth"]
        return auth

    @property
    def job_caller(self) -> Any:
        """The job whose own token was sent (routes with ``allow_job_token``), else None."""
        return self.identity.job

    async def prepare(self) -> None:
        self._hub_auth_user_cache = None  # HubAuthenticated's cache: nobody until proven otherwise
        try:
            self.bridge.request_limits.check_query(self.request.query)
            self.identity = await identify(
                self, self.request.headers.get("Authorization", ""), allow_job_token=self.allow_job_token,
                job_by_token=lambda token: self.call(self.bridge.job_manager.job_by_token, token))
        except FloydError as exc:
            raise to_http(exc) from None
        self._hub_auth_user_cache = self.identity.hub_user

    @property
    def caller(self) -> Caller:
        try:
            return self.identity.caller(self.bridge.admin_services)
        except FloydError as exc:
            raise to_http(exc) from None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a (blocking) manager method off the event loop and map its errors. Reads (GET,
        HEAD) have threads of their own; writes pass the write gate (admission.py), so a burst
        of writes neither delays reads nor is refused."""
        loop = asyncio.get_running_loop()
        try:
            if self.request.method in ("GET", "HEAD"):
                return await loop.run_in_executor(self.bridge.read_executor, lambda: fn(*args, **kwargs))
            return await self.bridge.write_gate.run(
                lambda: loop.run_in_executor(self.bridge.executor, lambda: fn(*args, **kwargs)))
        except FloydError as exc:
            raise to_http(exc) from None
        except Exception as exc:  # a full disk, the database down: 507/503, not a 500
            mapped = translate(exc)
            if mapped is None:
                raise
            raise to_http(mapped) from None

    def raw_argument(self, name: str, default: str = "") -> str:
        """A query argument exactly as sent (tornado's get_argument silently drops control
        characters, which would turn a path with NUL into a different, valid path).

        Like every argument reader here it settles who is asking first: a request without a
        token gets the 401 that says what to do, not a 400 about its arguments."""
        self.caller  # noqa: B018
        values = self.request.query_arguments.get(name)
        if not values:
            return default
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise to_http(BadRequest(f"Query argument {name!r} is not valid UTF-8.")) from None

    def optional_argument(self, name: str) -> str | None:
        """A query argument as sent, or None when absent: ``?owner=`` is an (invalid) empty name,
        not the same request as no ``owner`` at all."""
        return self.raw_argument(name) if name in self.request.query_arguments else None

    def int_argument(self, name: str, default: int | None, low: int, high: int) -> int | None:
        """A whole-number query argument within its range (validate.whole_number), else a 400
        that states the range; ``default`` when it is absent or empty."""
        raw = self.raw_argument(name)
        if not raw:
            return default
        return whole_number(raw, name, low, high, error=BadRequest)

    def flag_argument(self, name: str) -> bool:
        """A query flag (``?follow=1``): validate.query_flag, a 400 for anything but 1/0/true/false."""
        return query_flag(self.optional_argument(name), name)

    def json_body(self) -> dict:
        self.caller  # noqa: B018  (who is asking is settled before their input is judged)
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError):
            raise to_http(BadRequest("The request body is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise to_http(BadRequest("The request body must be a JSON object."))
        return body

    async def stream_file(self, path: Any, chunk: int = 1 << 20) -> None:
        """Send a file's bytes, read in the executor, flushing each chunk (no file in memory)."""
        loop = asyncio.get_running_loop()
        with open(path, "rb") as f:
            while True:
                block = await loop.run_in_executor(self.bridge.executor, f.read, chunk)
                if not block:
                    break
                self.write(block)
                await self.flush()

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data))

    def check_xsrf_cookie(self) -> None:
        # Token-authenticated API calls need no XSRF token, and a request with no
        # credentials at all cannot be forged: it gets the 401 that tells what to do.
        if self.request.headers.get("Authorization") or not self.get_cookie(self.hub_auth.cookie_name):
            return
        super().check_xsrf_cookie()

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """A FloydError raised anywhere in the handler (prepare, a check before ``call()``, a
        helper) answers its own status, not tornado's 500 for an unknown exception."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, FloydError):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The methods this handler implements: tornado's own methods answer 405."""
        return [m for m in cls.SUPPORTED_METHODS
                if getattr(cls, m.lower()) is not getattr(web.RequestHandler, m.lower())]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error of every handler (API and pages) passes here; error_body writes it."""
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        mapped = None if isinstance(exc, web.HTTPError) or exc is None else translate(exc)
        if mapped is not None:  # raised outside call(): the same 507/503 as inside it
            status_code, message = mapped.status, mapped.message
            self.set_status(status_code)
        if isinstance(exc, ApiError):
            message = exc.message
        if status_code == 500:
            message = "Internal error in the Floyd bridge; the administrator can find it in the bridge's log."
        for name, value in retry_headers(exc).items():
            self.set_header(name, value)  # (send_error cleared the headers set before the error)
        if status_code == 405:  # RFC 9110 §15.5.6: a 405 must say what the route does support
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.error_body(status_code, message)

    def error_body(self, status_code: int, message: str) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"status": status_code, "message": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            if value.log_message:
                log.warning("%d %s: %s", value.status_code, self.request.uri, value.log_message)
            return
        mapped = translate(value)
        if mapped is not None:
            log.warning("%d %s: %s", mapped.status, self.request.uri, mapped.log_message)
            return
        super().log_exception(typ, value, tb)


class ApiError(web.HTTPError):
    """An HTTPError whose user-facing message travels in the JSON body, not the status line."""

    def __init__(self, status: int, message: str, log_message: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, (log_message or message).replace("%", "%%"))
        self.message = message
        self.headers = headers or {}


def retry_headers(exc: object) -> dict[str, str]:
    """The headers an error carries (``Retry-After`` of a 429)."""
    if isinstance(exc, ApiError):
        return exc.headers
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}


def to_http(exc: FloydError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.log_message, retry_headers(exc))


class NotFoundHandler(BaseHandler):
    """JSON 404 for unknown API routes (and the default handler)."""

    async def prepare(self) -> None:
        raise ApiError(404, f"No such route: {self.request.method} {self.request.path}")
