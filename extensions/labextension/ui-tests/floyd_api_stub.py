"""A stand-in for the real server extension's `floyd/api` routes, for the browser smoke test.

The first POST to `run` fails with a 422 so the dialog's inline error can be checked.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

STATE: dict[str, Any] = {"jobs": [], "runs": 0, "stopped": []}


def _job(n: int, state: str, path: str) -> dict[str, Any]:
    return {
        "id": f"alice/proj/{n}",
        "number": n,
        "state": state,
        "reason": None,
        "exit_code": 0 if state == "succeeded" else None,
        "environment": "pytorch",
        "resources": {"gpus": 1},
        "duration": 75,
        "latest_metrics": {"loss": 0.25, "acc": 0.91},
        "created_at": "2025-01-01T00:00:00Z",
        "path": path,
    }


STATE["jobs"].append(_job(1, "succeeded", "old.py"))


def _error(handler: APIHandler, status: int, message: str) -> None:
    handler.set_status(status)
    handler.finish(json.dumps({"status": status, "message": message}))


class Defaults(APIHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(
            json.dumps(
                {
                    "environment": "pytorch",
                    "environments": [
                        {"name": "pytorch", "description": "PyTorch 2", "gpu": True},
                        {"name": "cpu-small", "description": "no GPU", "gpu": False},
                    ],
                    "datasets": [{"ref": "alice/mnist:3", "mount": "mnist"}],
                    "params": {"lr": 0.01, "epochs": 3, "path": self.get_argument("path")},
                }
            )
        )


class Run(APIHandler):
    @tornado.web.authenticated
    def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        STATE["runs"] += 1
        if STATE["runs"] == 1:
            return _error(self, 422, "No GPU is free: 0 of 0 in use (stub)")
        # the real server's job_inputs(): "SRC[:MOUNT]" strings or {source, mount} objects
        for item in body.get("datasets") or []:
            if not (isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("source"), str))):
                return _error(self, 400, f"Cannot read dataset {item!r}")
        if not isinstance(body.get("max_runtime", 0), int) or not isinstance(body.get("gpus", 0), int):
            return _error(self, 400, "gpus and max_runtime must be whole numbers")
        STATE["last_request"] = body
        job = _job(len(STATE["jobs"]) + 1, "running", body["path"])
        STATE["jobs"].insert(0, job)
        self.set_status(201)
        self.finish(json.dumps({"job": job}))


class Jobs(APIHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(json.dumps({"items": STATE["jobs"]}))


class Job(APIHandler):
    @tornado.web.authenticated
    def get(self, n: str) -> None:
        for job in STATE["jobs"]:
            if job["number"] == int(n):
                return self.finish(json.dumps(job))
        _error(self, 404, f"No job {n}")


class Stop(APIHandler):
    @tornado.web.authenticated
    def post(self, n: str) -> None:
        for job in STATE["jobs"]:
            if job["number"] == int(n):
                job["state"] = "stopped"
                return self.finish(json.dumps({"job": job}))
        _error(self, 404, f"No job {n}")


class Metrics(APIHandler):
    @tornado.web.authenticated
    def get(self, n: str) -> None:
        self.finish(
            json.dumps(
                {
                    "series": {
                        "loss": [{"step": i, "value": 1.0 / (i + 1)} for i in range(10)],
                        "acc": [{"step": i, "value": 0.5 + i / 25} for i in range(10)],
                    }
                }
            )
        )


class Logs(APIHandler):
    @tornado.web.authenticated
    async def get(self, n: str) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        for i in range(5):
            self.write(f"data: job {n} line {i} at {time.time():.0f}\n\n")
            await self.flush()
            await asyncio.sleep(0.05)
        self.write("event: end\ndata: \n\n")
        await self.flush()
        self.finish()


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = url_path_join(serverapp.web_app.settings["base_url"], "floyd/api")
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "defaults"), Defaults),
            (url_path_join(base, "run"), Run),
            (url_path_join(base, "jobs"), Jobs),
            (url_path_join(base, r"jobs/(\d+)"), Job),
            (url_path_join(base, r"jobs/(\d+)/stop"), Stop),
            (url_path_join(base, r"jobs/(\d+)/metrics"), Metrics),
            (url_path_join(base, r"jobs/(\d+)/logs"), Logs),
        ],
    )
