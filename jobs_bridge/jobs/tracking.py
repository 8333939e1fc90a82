"""MLflow-compatible tracking: a job is an MLflow run, so the unchanged MLflow client logs to it.

Every job gets ``MLFLOW_TRACKING_URI`` (the bridge's ``/api/v1/mlflow``) and its own token as
``MLFLOW_TRACKING_TOKEN`` (executors/contract.py). ``mlflow.start_run()`` then "creates" the run
that is the job itself; params land in the job's params, metrics in its metric series (the same
buffer as ``{"metric": …}`` lines), tags in its tags, and artifacts in its output folder
(``artifact_uri`` is ``mlflow-artifacts:/<run id>``, which the client turns into ``PUT``s to
this API). Experiments are not stored: an experiment's id is its name (``"0"`` is ``Default``),
and a run keeps the one it was created in as the tag ``floyd.experiment``. Only the subset of
MLflow's REST API that those calls use is implemented (docs/tracking.md).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from jobs_bridge.executors.contract import give_to_container_user
from jobs_bridge.inputs import find_job
from jobs_bridge.jobs import states
from jobs_bridge.jobs.metrics import JobMetrics
from jobs_bridge.orm import Job
from jobs_bridge.storage.paths import StorageLayout, clean_relpath, contained
from jobs_bridge.validate import INT_MAX

DEFAULT_EXPERIMENT = ("0", "Default")
EXPERIMENT_TAG = "floyd.experiment"
KEY_MAX = 250  # MLflow's limits on keys and values
PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 8000
NAME_MAX = 500
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
STATUS_OF_STATE = {states.QUEUED: "SCHEDULED", states.STARTING: "SCHEDULED", states.RUNNING: "RUNNING",
                   states.SUCCEEDED: "FINISHED", states.STOPPED: "KILLED"}


def millis(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


def text_field(body: dict, name: str, limit: int, *, required: bool = True, empty: bool = False) -> str:
    """A string field of a request (MLflow's clients send every value as a string)."""
    value = body.get(name)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or (not value and not empty) or len(value) > limit:
        raise BadRequest(f"'{name}' must be a {'' if empty else 'non-empty '}string of at most {limit} characters.")
    if "\x00" in value:
        raise BadRequest(f"'{name}' must not contain NUL characters.")
    return value


def experiment_json(experiment_id: str) -> dict:
    name = DEFAULT_EXPERIMENT[1] if experiment_id == DEFAULT_EXPERIMENT[0] else experiment_id
    return {"experiment_id": experiment_id, "name": name, "artifact_location": "mlflow-artifacts:/",
            "lifecycle_stage": "active", "tags": []}


def experiment_id_of(name: str) -> str:
    return DEFAULT_EXPERIMENT[0] if name == DEFAULT_EXPERIMENT[1] else name


def run_json(job: Job, latest: dict[str, float]) -> dict:
    run_id = str(job.id)
    tags = json.loads(job.tags or "{}")
    info = {
        "run_id": run_id, "run_uuid": run_id, "run_name": tags.get("mlflow.runName", f"{job.project}-{job.number}"),
        "experiment_id": tags.get(EXPERIMENT_TAG, DEFAULT_EXPERIMENT[0]), "user_id": job.owner,
        "status": STATUS_OF_STATE.get(job.state, "FAILED"), "start_time": millis(job.started_at or job.created_at),
        "end_time": millis(job.finished_at), "artifact_uri": f"mlflow-artifacts:/{run_id}", "lifecycle_stage": "active",
    }
    params = json.loads(job.params or "{}")
    data = {
        "metrics": [{"key": k, "value": v, "timestamp": 0, "step": 0} for k, v in sorted(latest.items())],
        "params": [{"key": k, "value": v if isinstance(v, str) else json.dumps(v)} for k, v in sorted(params.items())],
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
    }
    return {"info": {k: v for k, v in info.items() if v is not None}, "data": data}


class Tracking:
    """The MLflow calls, checked as the caller: a job's token reaches only its own run, a user's
    token the runs of their own jobs (an admin's any), and another user's run is a 404."""

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, metrics: JobMetrics) -> None:
        self.sessions = sessions
        self.layout = layout
        self.metrics = metrics

    # -- finding the run --------------------------------------------------------------------
    @staticmethod
    def run_pk(run_id: object) -> int:
        if not isinstance(run_id, str) or not run_id:
            raise BadRequest("Give the run: 'run_id' (the MLflow client sends it; a job's run id is in "
                             "mlflow.active_run().info.run_id).")
        if not run_id.isdigit() or len(run_id) > 10 or int(run_id) > INT_MAX:
            raise NotFound(f"Run {run_id[:40]!r} not found.")
        return int(run_id)

    def find(self, s: Session, caller: Caller, job: Job | None, run_id: object) -> Job:
        pk = self.run_pk(run_id)
        if job is not None and job.id != pk:
            raise NotFound("A job's token only reaches its own run.")
        row = s.get(Job, pk)
        if row is None:
            raise NotFound(f"Run {pk} not found.")
        return find_job(s, caller, row.owner, row.project, row.number)  # the access rule: 404 to others

    def _change(self, caller: Caller, job: Job | None, run_id: object, fn: Callable[[Job], None]) -> None:
        with self.sessions.begin() as s:
            row = self.find(s, caller, job, run_id)
            if row.state in states.FINISHED:
                raise Conflict(f"Job {row.owner}/{row.project}/{row.number} has ended ({row.state}); its run "
                               "can no longer change.")
            fn(row)

    # -- experiments ------------------------------------------------------------------------
    def experiment(self, experiment_id: str) -> dict:
        text_field({"experiment_id": experiment_id}, "experiment_id", NAME_MAX)
        return {"experiment": experiment_json(experiment_id)}

    def experiment_by_name(self, name: str) -> dict:
        text_field({"experiment_name": name}, "experiment_name", NAME_MAX)
        return {"experiment": experiment_json(experiment_id_of(name))}

    def create_experiment(self, body: dict) -> dict:
        return {"experiment_id": experiment_id_of(text_field(body, "name", NAME_MAX))}

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, caller: Caller, job: Job | None, body: dict) -> dict:
        """``mlflow.start_run()``: the run is the job that asks (its own token names it)."""
        if job is None:
            raise Forbidden("Runs are the jobs themselves: start_run() works inside a job, with the job's own "
                            "token (MLFLOW_TRACKING_TOKEN, set in every job).")
        with self.sessions.begin() as s:
            row = self.find(s, caller, job, str(job.id))
            experiment = body.get("experiment_id") or DEFAULT_EXPERIMENT[0]
            experiment = text_field({"experiment_id": experiment}, "experiment_id", NAME_MAX)
            tags = dict(pair(t, TAG_VALUE_MAX) for t in items(body, "tags"))
            run_name = text_field(body, "run_name", NAME_MAX, required=False)
            merged = json.loads(row.tags or "{}") | tags | {EXPERIMENT_TAG: experiment}
            if run_name:
                merged["mlflow.runName"] = run_name
            row.tags = json.dumps(merged)
            return {"run": run_json(row, JobMetrics.latest(s, [row.id]).get(row.id, {}))}

    def get_run(self, caller: Caller, job: Job | None, run_id: str) -> dict:
        with self.sessions() as s:
            row = self.find(s, caller, job, run_id)
            return {"run": run_json(row, JobMetrics.latest(s, [row.id]).get(row.id, {}))}

    def update_run(self, caller: Caller, job: Job | None, body: dict) -> dict:
        """``end_run()``: the job's own state stays the platform's; a run name is kept."""
        with self.sessions.begin() as s:
            row = self.find(s, caller, job, run_id_of(body))
            status = body.get("status")
            if status is not None and status not in RUN_STATUSES:
                raise BadRequest(f"'status' must be one of {', '.join(RUN_STATUSES)}.")
            run_name = text_field(body, "run_name", NAME_MAX, required=False)
            if run_name and row.state in states.FINISHED:
                raise Conflict(f"Job {row.owner}/{row.project}/{row.number} has ended; its run's name stays.")
            if run_name:
                row.tags = json.dumps(json.loads(row.tags or "{}") | {"mlflow.runName": run_name})
            info = run_json(row, {})["info"]
        return {"run_info": {**info, "status": status or info["status"]}}

    # -- logging ----------------------------------------------------------------------------
    def log_param(self, caller: Caller, job: Job | None, body: dict) -> dict:
        return self.log_batch(caller, job, {"run_id": run_id_of(body), "params": [body]})

    def set_tag(self, caller: Caller, job: Job | None, body: dict) -> dict:
        return self.log_batch(caller, job, {"run_id": run_id_of(body), "tags": [body]})

    def log_metric(self, caller: Caller, job: Job | None, body: dict) -> dict:
        return self.log_batch(caller, job, {"run_id": run_id_of(body), "metrics": [body]})

    def log_batch(self, caller: Caller, job: Job | None, body: dict) -> dict:
        """Params into the job's params (a changed value is refused, as MLflow does), tags into its
        tags, metrics into its series; all checked before anything is kept."""
        def apply(row: Job) -> None:  # inside the transaction, after the access rule: a 404 comes first
            params = dict(pair(p, PARAM_VALUE_MAX) for p in items(body, "params"))
            tags = dict(pair(t, TAG_VALUE_MAX) for t in items(body, "tags"))
            points = [metric_point(m) for m in items(body, "metrics")]
            old = json.loads(row.params or "{}")
            for key, value in params.items():
                if key in old and (old[key] if isinstance(old[key], str) else json.dumps(old[key])) != value:
                    raise BadRequest(f"Param {key!r} is already {old[key]!r}; a run's params cannot change.")
            row.params = json.dumps(old | params)
            if tags:
                row.tags = json.dumps(json.loads(row.tags or "{}") | tags)
            if points:
                self.metrics.report(row.id, points)

        self._change(caller, job, run_id_of(body), apply)
        return {}

    def write_artifact(self, caller: Caller, job: Job | None, run_id: str, path: str, data: bytes) -> dict:
        """``log_artifact``: the file lands in the job's output folder, never outside it."""
        target: list[Path] = []

        def locate(row: Job) -> None:
            target.append(self.layout.job_output(row.owner, row.project, row.number))

        self._change(caller, job, run_id, locate)
        base = Path(os.path.realpath(target[0]))
        rel = clean_relpath(path, "artifact path")
        dest = contained(base, rel)
        if dest.is_dir():
            raise Conflict(f"The job's output already has a directory {rel!r}.")
        write_file(base, dest, data)
        return {}


def write_file(base: Path, dest: Path, data: bytes) -> None:
    """Create missing folders (the container user's, like the rest of the output), then publish by rename."""
    missing = [p for p in reversed(dest.parents) if base in p.parents and not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        give_to_container_user(folder)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".mlflow-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        give_to_container_user(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_id_of(body: dict) -> str:
    value = body.get("run_id") or body.get("run_uuid")
    Tracking.run_pk(value)
    return str(value)


def items(body: dict, name: str) -> list[dict]:
    value = body.get(name, [])
    limit = BATCH_LIMITS[name]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadRequest(f"'{name}' must be a list of objects.")
    if len(value) > limit:
        raise TooLarge(f"At most {limit} {name} in one request (MLflow's limit); send them in batches.")
    return value


def pair(item: dict, value_max: int) -> tuple[str, str]:
    key = text_field(item, "key", KEY_MAX)
    return key, text_field(item, "value", value_max, empty=True)


def metric_point(item: dict) -> dict:
    key = text_field(item, "key", 128)
    value, step = item.get("value"), item.get("step", 0)
    try:  # (MLflow sends NaN and infinities as strings: refused like any non-number)
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer past the largest float
        number = math.nan
    if not math.isfinite(number):
        raise BadRequest(f"Metric {key!r}: the value must be a finite number.")
    if isinstance(step, str) and step.lstrip("-").isdigit():
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, int) or abs(step) > INT_MAX:
        raise BadRequest(f"Metric {key!r}: 'step' must be a whole number.")
    return {"metric": key, "value": number, "step": step}
