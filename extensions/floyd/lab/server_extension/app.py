"""``FloydExtensionApp`` and its handlers (``/floyd/api/...`` of the single-user server).

==========================================  =====================================================
``POST /floyd/api/run``                     snapshot the code directory and submit a job
``GET  /floyd/api/jobs``                    the project's jobs, newest first
``GET  /floyd/api/jobs/<n>``                one job's record
``GET  /floyd/api/jobs/<n>/logs``           the log as text; ``?follow=1``: the bridge's SSE stream
``GET  /floyd/api/jobs/<n>/metrics``        metric series
``GET  /floyd/api/jobs/<n>/output``         output files, and where they are in this workspace
``POST /floyd/api/jobs/<n>/stop``           stop it
``GET  /floyd/api/defaults``                environment, environments, mounted datasets,
                                            a notebook's ``parameters`` (``?path=x.ipynb``)
``POST /floyd/api/deploy``                  "Deploy as endpoint" (handlers in ``deploy.py``)
``GET  /floyd/api/endpoints/<name>/...``    ``versions/<n>``: a version's state, for polling
==========================================  =====================================================

Every handler is a Jupyter ``APIHandler`` (the server's token or cookie, XSRF for the browser).
Calls to the bridge are blocking ``requests`` calls, so they run in a thread. A refusal of the
bridge comes back as ``{"status", "message"}`` with the bridge's status code.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import tornado.iostream
import tornado.web
from jupyter_server.extension.application import ExtensionApp

from floyd.client.errors import ConnectionFailed, FloydAPIError, FloydClientError
from floyd.client.http import FloydClient
from floyd.client.request import JobOptions
from floyd.lab.server_extension.deploy import DeployHandler, VersionHandler
from floyd.lab.server_extension.handler import BadInput, FloydHandler, only_keys
from floyd.lab.submit import schedule_from_lab, submit_from_lab
from floyd.lab.targets import script_or_notebook
from floyd.lab.workspace import (
    code_dir,
    job_output_dir,
    make_client,
    mounted_datasets,
    notebook_parameters,
    relative_to_code,
    workspace_project,
)

RUN_KEYS = {"path", "environment", "gpus", "cpus", "memory", "datasets", "params", "max_runtime", "message", "args",
            "schedule"}


class RunHandler(FloydHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        root = code_dir()
        try:
            body = self.body()
            what, options = run_request(body, self.server_root, root)
            project = workspace_project(root)
            schedule = body.get("schedule")
            if schedule is not None and not isinstance(schedule, dict):
                raise BadInput("'schedule' must be {name, cron, timezone?}.")
        except FloydClientError as exc:
            return self.write_problem(400, exc.message)
        if schedule is not None:
            return await self.guarded(lambda: {"schedule": schedule_from_lab(what, options, schedule, project, root)},
                                      201)
        await self.guarded(lambda: submit_from_lab(what, options, project=project, root=root).facts(), 201)


def run_request(body: dict, server_root: Path, root: Path) -> tuple[dict[str, str], JobOptions]:
    """The Lab's ``{path, args?, environment?, gpus?, cpus?, memory?, datasets?, params?, max_runtime?,
    message?}`` → what to run and the options (floyd.yml fills in the rest when it is submitted)."""
    only_keys(body, RUN_KEYS)
    path = body.get("path")
    if not isinstance(path, str) or not path.strip():
        raise BadInput("Say what to run: 'path' of a .py script or .ipynb notebook.")
    args = body.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise BadInput("'args' must be a list of strings.")
    rel = relative_to_code(path.strip().lstrip("/"), root, server_root)
    gpus = body.get("gpus")
    if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
        raise BadInput(f"'gpus' must be a whole number of at least 0, not {gpus!r}.")
    max_runtime = body.get("max_runtime")
    if max_runtime in ("", None):
        max_runtime = None
    elif isinstance(max_runtime, bool) or not isinstance(max_runtime, int) or max_runtime < 0:
        raise BadInput(f"'max_runtime' must be a whole number of seconds (0 = no limit), not {max_runtime!r}.")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadInput("'params' must be an object of name → value.")
    datasets = body.get("datasets") or []
    if isinstance(datasets, str):
        datasets = [d for d in datasets.replace(",", " ").split() if d]
    if not isinstance(datasets, list):
        raise BadInput("'datasets' must be a list such as [\"mnist:3:mnist\"].")
    for key in ("environment", "message", "memory"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise BadInput(f"'{key}' must be a string.")
    options = JobOptions(environment=body.get("environment") or None, gpus=gpus, cpus=body.get("cpus"),
                         memory=body.get("memory") or None, data=datasets, params=params, max_runtime=max_runtime,
                         message=body.get("message") or None)
    return script_or_notebook(rel, args), options


class JobsHandler(FloydHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            project = self.project()
            state = self.get_query_argument("state", None)
        except FloydClientError as exc:
            return self.write_problem(400, exc.message)
        await self.guarded(lambda: {"project": project, "items": make_client().jobs(project=project, state=state)})


class JobHandler(FloydHandler):
    @tornado.web.authenticated
    async def get(self, number: str) -> None:
        await self.guarded(lambda: make_client().job(*self.job_args(number)))


class JobMetricsHandler(FloydHandler):
    @tornado.web.authenticated
    async def get(self, number: str) -> None:
        await self.guarded(lambda: make_client().job_metrics(*self.job_args(number)))


class JobStopHandler(FloydHandler):
    @tornado.web.authenticated
    async def post(self, number: str) -> None:
        await self.guarded(lambda: make_client().stop_job(*self.job_args(number)))


class JobOutputHandler(FloydHandler):
    @tornado.web.authenticated
    async def get(self, number: str) -> None:
        path = self.get_query_argument("path", "")

        def files() -> dict:
            owner, project, n = self.job_args(number)
            here = os.environ.get("FLOYD_PROJECT") == f"{owner}/{project}"
            return {"job": f"{owner}/{project}/{n}",
                    "path": str(job_output_dir(n)) if here else None,
                    "files": make_client().job_output_files(owner, project, n, path=path, recursive=True)}

        await self.guarded(files)


class JobLogsHandler(FloydHandler):
    """The log: plain text, or with ``?follow=1`` the bridge's SSE stream passed through as it comes."""

    _response: Any = None
    _closed = False

    @tornado.web.authenticated
    async def get(self, number: str) -> None:
        if self.get_query_argument("follow", "") not in ("1", "true", "yes"):
            try:
                text = await self.call(lambda: make_client().job_log(*self.job_args(number)))
            except FloydClientError as exc:
                return self._error(exc)
            self.set_status(200)
            self.finish(text, set_content_type="text/plain; charset=utf-8")
            return
        try:
            client = make_client()
            owner, project, n = self.job_args(number)
            resp = await self.call(lambda: client.request(
                "GET", f"jobs/{owner}/{project}/{n}/logs", params={"follow": "1"}, stream=True,
                timeout=(30, None)))
        except FloydClientError as exc:
            return self._error(exc)
        self._response = resp
        self.set_status(200)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        await self.flush()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=pump, args=(resp, loop, queue), daemon=True,
                         name=f"floyd-sse-{owner}/{project}/{n}").start()
        try:
            while not self._closed:
                chunk = await queue.get()
                if chunk is None:
                    break
                self.write(chunk)
                await self.flush()
        except tornado.iostream.StreamClosedError:
            pass
        finally:
            resp.close()
        if not self._closed:
            self.finish(set_content_type="text/event-stream; charset=utf-8")

    def on_connection_close(self) -> None:
        self._closed = True
        if self._response is not None:
            self._response.close()  # wakes the pump thread: it stops reading the bridge's stream

    def _error(self, exc: FloydClientError) -> None:
        status = exc.status if isinstance(exc, FloydAPIError) else 502 if isinstance(exc, ConnectionFailed) else 400
        self.write_problem(status, exc.message)


def pump(resp: Any, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
    """Read the bridge's SSE bytes in a thread and hand them to the handler's loop."""
    try:
        for chunk in resp.iter_content(chunk_size=None):
            if chunk:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
    except Exception:  # closed by the handler (client went away) or the bridge went away
        pass
    finally:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass


class DefaultsHandler(FloydHandler):
    """What the Run dialog starts from: the workspace's environment and datasets, the platform's
    environments, and a notebook's ``parameters``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        root = code_dir()

        def defaults() -> dict:
            params: dict[str, Any] = {}
            rel = None
            if path:
                rel = relative_to_code(path.lstrip("/"), root, self.server_root)
                if rel.endswith(".ipynb"):
                    params = notebook_parameters(root / rel)
            try:
                project = workspace_project(root)
            except FloydClientError:
                project = None
            client: FloydClient = make_client()
            environments = client.get_json("environments")["items"]
            datasets = mounted_datasets()
            return {"project": project, "environment": os.environ.get("FLOYD_ENVIRONMENT") or None,
                    "environments": environments, "datasets": datasets,
                    "dataset_refs": [d["ref"] or d["mount"] for d in datasets],
                    "path": rel, "params": params, "code_dir": str(root)}

        await self.guarded(defaults)


class FloydExtensionApp(ExtensionApp):
    """The ``floyd`` server extension (no pages of its own: JupyterLab's extension is the UI)."""

    name = "floyd"
    load_other_extensions = True

    def initialize_handlers(self) -> None:
        n = r"(\d+)"
        self.handlers.extend([
            (r"/floyd/api/run", RunHandler),
            (r"/floyd/api/jobs", JobsHandler),
            (rf"/floyd/api/jobs/{n}", JobHandler),
            (rf"/floyd/api/jobs/{n}/logs", JobLogsHandler),
            (rf"/floyd/api/jobs/{n}/metrics", JobMetricsHandler),
            (rf"/floyd/api/jobs/{n}/output", JobOutputHandler),
            (rf"/floyd/api/jobs/{n}/stop", JobStopHandler),
            (r"/floyd/api/defaults", DefaultsHandler),
            (r"/floyd/api/deploy", DeployHandler),
            (r"/floyd/api/endpoints/([^/]+)/versions/(\d+)", VersionHandler),
        ])
