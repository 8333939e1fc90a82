"""The base of the server extension's handlers: client calls in a thread, client errors as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from tornado.ioloop import IOLoop

from floyd.client.errors import ConnectionFailed, FloydAPIError, FloydClientError, NotLoggedIn
from floyd.lab.workspace import code_dir, workspace_project

T = TypeVar("T")


class BadInput(FloydClientError):
    pass


def only_keys(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadInput(f"Unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))}).")


class FloydHandler(APIHandler):
    """Runs client calls in a thread and turns client errors into JSON answers."""

    def write_problem(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"status": status, "message": message}))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await IOLoop.current().run_in_executor(None, fn, *args)

    async def guarded(self, fn: Callable[[], Any], status: int = 200) -> None:
        try:
            result = await self.call(fn)
        except FloydAPIError as exc:
            self.write_problem(exc.status, exc.message)
        except NotLoggedIn as exc:
            self.write_problem(503, exc.message)
        except ConnectionFailed as exc:
            self.write_problem(502, exc.message)
        except FloydClientError as exc:
            self.write_problem(400, exc.message)
        else:
            self.set_status(status)
            self.finish(json.dumps(result))

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise BadInput("The request body is not JSON.") from None
        if not isinstance(data, dict):
            raise BadInput("The request body must be a JSON object.")
        return data

    @property
    def server_root(self) -> Path:
        root = self.settings.get("server_root_dir") or os.getcwd()
        return Path(os.path.expanduser(root))

    def project(self) -> str:
        return self.get_query_argument("project", None) or workspace_project(code_dir())

    def job_args(self, number: str) -> tuple[str, str, int]:
        owner, name = self.project().split("/", 1)
        return owner, name, int(number)
