"""``/api/v1/mlflow``: the subset of MLflow's REST tracking API that the MLflow client calls for
``start_run``, ``log_param``, ``log_metric(s)``, ``set_tag``, ``log_artifact`` and ``end_run``
(jobs/tracking.py); every other route under the prefix answers 501 naming the route.

Errors carry MLflow's ``error_code`` beside the platform's body, so the client raises the
exception it would raise against an MLflow server."""

from __future__ import annotations

import json
from typing import Any

from jobs_bridge.errors import NotImplementedRoute
from jobs_bridge.handlers.base import BaseHandler, to_http
from jobs_bridge.jobs.tracking import Tracking

PREFIX = "/api/v1/mlflow"
TRACKING = PREFIX + "/api/2.0/mlflow"
ERROR_CODES = {400: "INVALID_PARAMETER_VALUE", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               404: "RESOURCE_DOES_NOT_EXIST", 405: "ENDPOINT_NOT_FOUND", 409: "INVALID_STATE", 413: "RESOURCE_LIMIT_EXCEEDED",
               429: "REQUEST_LIMIT_EXCEEDED", 501: "ENDPOINT_NOT_FOUND", 503: "TEMPORARILY_UNAVAILABLE"}


class MlflowHandler(BaseHandler):
    allow_job_token = True  # MLFLOW_TRACKING_TOKEN is the job's own token

    @property
    def tracking(self) -> Tracking:
        return self.bridge.job_manager.tracking

    def error_body(self, status_code: int, message: str) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        code = ERROR_CODES.get(status_code, "INTERNAL_ERROR")
        self.finish(json.dumps({"status": status_code, "message": message, "error_code": code}))

    async def run_call(self, method: Any) -> None:
        """A logging call: the body (with its run id) goes to the tracking manager as the caller."""
        body = self.json_body()
        self.write_json(await self.call(method, self.caller, self.job_caller, body))


class ExperimentGetHandler(MlflowHandler):
    async def get(self) -> None:
        self.write_json(await self.call(self.tracking.experiment, self.raw_argument("experiment_id")))


class ExperimentByNameHandler(MlflowHandler):
    async def get(self) -> None:
        self.write_json(await self.call(self.tracking.experiment_by_name, self.raw_argument("experiment_name")))


class ExperimentCreateHandler(MlflowHandler):
    async def post(self) -> None:
        self.write_json(await self.call(self.tracking.create_experiment, self.json_body()))


class RunCreateHandler(MlflowHandler):
    async def post(self) -> None:
        await self.run_call(self.tracking.create_run)


class RunGetHandler(MlflowHandler):
    async def get(self) -> None:
        run_id = self.raw_argument("run_id") or self.raw_argument("run_uuid")
        self.write_json(await self.call(self.tracking.get_run, self.caller, self.job_caller, run_id))


class RunUpdateHandler(MlflowHandler):
    async def post(self) -> None:
        await self.run_call(self.tracking.update_run)


class LogBatchHandler(MlflowHandler):
    async def post(self) -> None:
        await self.run_call(self.tracking.log_batch)


class LogMetricHandler(MlflowHandler):
    async def post(self) -> None:
        await self.run_call(self.tracking.log_metric)


class LogParameterHandler(MlflowHandler):
    async def post(self) -> None:
        await self.run_call(self.tracking.log_param)


class SetTagHandler(MlflowHandler):
    async def post(self) -> None:
        await self.run_call(self.tracking.set_tag)


class ArtifactHandler(MlflowHandler):
    """``mlflow-artifacts:/<run id>`` resolves to this route: one file into the job's output."""

    async def put(self, run_id: str, artifact_path: str) -> None:
        self.caller  # noqa: B018  (who is asking is settled before their input is judged)
        result = await self.call(self.tracking.write_artifact, self.caller, self.job_caller, run_id,
                                 artifact_path, self.request.body)
        self.write_json(result)


class NotImplementedHandler(MlflowHandler):
    """Any other MLflow route: a 501 that names it, so a user knows which call is not supported."""

    def _refuse(self, route: str) -> None:
        self.caller  # noqa: B018
        raise to_http(NotImplementedRoute(
            f"The Floyd bridge does not implement MLflow's {self.request.method} /{route}; it supports "
            "start_run, log_param, log_metric(s), set_tag, log_artifact and end_run (docs/tracking.md)."))

    async def get(self, route: str) -> None:
        self._refuse(route)

    async def post(self, route: str) -> None:
        self._refuse(route)

    async def put(self, route: str) -> None:
        self._refuse(route)

    async def patch(self, route: str) -> None:
        self._refuse(route)

    async def delete(self, route: str) -> None:
        self._refuse(route)


default_handlers = [
    (TRACKING + "/experiments/get", ExperimentGetHandler),
    (TRACKING + "/experiments/get-by-name", ExperimentByNameHandler),
    (TRACKING + "/experiments/create", ExperimentCreateHandler),
    (TRACKING + "/runs/create", RunCreateHandler),
    (TRACKING + "/runs/get", RunGetHandler),
    (TRACKING + "/runs/update", RunUpdateHandler),
    (TRACKING + "/runs/log-batch", LogBatchHandler),
    (TRACKING + "/runs/log-metric", LogMetricHandler),
    (TRACKING + "/runs/log-parameter", LogParameterHandler),
    (TRACKING + "/runs/set-tag", SetTagHandler),
    (PREFIX + "/api/2.0/mlflow-artifacts/artifacts/{run_id}/{artifact_path}", ArtifactHandler),
    (PREFIX + "/{route}", NotImplementedHandler),  # last: everything else under the prefix
]
