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
from jobs_bridge.errors import BadRequest, FloydError, translate
from jobs_bridge.services import BridgeServices

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
        """Run a (blocking) manager method in the bridge's executor and map its errors."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.bridge.executor, lambda: fn(*args, **kwargs))
        except FloydError as exc:
            raise to_http(exc) from None
        except Exception as exc:  # a full disk, the database down: 507/503, not a 500
            mapped = translate(exc)
            if mapped is None:
                raise
            raise to_http(mapped) from None

    def raw_argument(self, name: str, default: str = "") -> str:
        """A query argument exactly as sent (tornado's get_argument silently drops control
        characters, which would turn a path with NUL into a different, valid path)."""
        values = self.request.query_arguments.get(name)
        if not values:
            return default
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise to_http(BadRequest(f"Query argument {name!r} is not valid UTF-8.")) from None

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

    def write_error(self, status_code: int, **kwargs: Any) -> None:
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

    def __init__(self, status: int, message: str, log_message: str | None = None) -> None:
        super().__init__(status, (log_message or message).replace("%", "%%"))
        self.message = message


def to_http(exc: FloydError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.log_message)


class NotFoundHandler(BaseHandler):
    """JSON 404 for unknown API routes (and the default handler)."""

    async def prepare(self) -> None:
        raise ApiError(404, f"No such route: {self.request.method} {self.request.path}")
