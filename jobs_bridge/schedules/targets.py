"""What a schedule starts: a stored request of some kind, checked when the schedule is made and
submitted as its owner each time it comes due.

Kind ``job`` holds the body of ``POST /api/v1/jobs`` (the one job request, client/request.py,
with its code snapshot); kind ``pipeline`` the body of ``POST /api/v1/pipelines`` (floyd.yml's
pipeline as ``floyd pipeline run`` sends it, with its code snapshot), checked whole by the
PipelineManager when the schedule is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import BadRequest
from jobs_bridge.jobs import states
from jobs_bridge.jobs.manager import JobManager
from jobs_bridge.orm import Job, PipelineRun
from jobs_bridge.pipelines.manager import PipelineManager
from jobs_bridge.pipelines.records import RUN_RUNNING
from jobs_bridge.validate import only_keys

TARGET_MAX_BYTES = 64 << 10  # a stored request; a job request is far smaller


@dataclass(frozen=True)
class Started:
    """The jobs one run started: their ids (for the overlap check) and names (for people)."""

    ids: list[int]
    names: list[str]


class Target(Protocol):
    """A kind of thing a schedule starts."""

    def check(self, s: Session, caller: Caller, target: dict) -> dict:
        """The stored form of ``target`` (4xx for a bad one; nothing is started)."""

    def launch(self, owner: str, target: dict) -> Started:
        """Start it as ``owner`` (blocking)."""

    def still_going(self, s: Session, ids: list[int]) -> bool:
        """Whether something a previous run started has not ended."""


class JobTarget:
    """``{"kind": "job", "request": <the body of POST /api/v1/jobs>}``."""

    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs

    def check(self, s: Session, caller: Caller, target: dict) -> dict:
        only_keys(target, ("kind", "request"))
        request = target.get("request")
        if not isinstance(request, dict):
            raise BadRequest("'target.request' must be a job request (what POST /api/v1/jobs takes).")
        if not request.get("snapshot"):
            raise BadRequest("'target.request' needs a code 'snapshot': a schedule reruns the same code each time.")
        self.jobs.resolver.resolve(s, caller, request)  # the same checks as a submission, nothing queued
        if len(json.dumps(request)) > TARGET_MAX_BYTES:
            raise BadRequest(f"'target.request' is over {TARGET_MAX_BYTES} bytes.")
        return {"kind": "job", "request": request}

    def launch(self, owner: str, target: dict) -> Started:
        result = self.jobs.submit(Caller(owner), dict(target["request"]))
        jobs = result.get("jobs") or [result["job"]]
        names = [str(j["id"]) for j in jobs]
        with self.jobs.reader.sessions() as s:
            ids = [self._id(s, name) for name in names]
        return Started(ids, names)

    @staticmethod
    def _id(s: Session, name: str) -> int:
        owner, project, number = name.split("/")
        return int(s.scalar(select(Job.id).where(Job.owner == owner, Job.project == project,
                                                 Job.number == int(number))) or 0)

    def still_going(self, s: Session, ids: list[int]) -> bool:
        if not ids:
            return False
        ended = states.FINISHED
        return any(state not in ended for state in s.scalars(select(Job.state).where(Job.id.in_(ids))))


class PipelineTarget:
    """``{"kind": "pipeline", "request": <the body of POST /api/v1/pipelines>}``; a run's "jobs"
    are pipeline runs (their ids for the overlap check, OWNER/PROJECT/N for people)."""

    def __init__(self, pipelines: PipelineManager) -> None:
        self.pipelines = pipelines

    def check(self, s: Session, caller: Caller, target: dict) -> dict:
        only_keys(target, ("kind", "request"))
        request = target.get("request")
        if not isinstance(request, dict):
            raise BadRequest("'target.request' must be a pipeline run request (what POST /api/v1/pipelines takes).")
        if not request.get("snapshot"):
            raise BadRequest("'target.request' needs a code 'snapshot': a schedule reruns the same code each time.")
        stored = self.pipelines.check(caller, request)  # the same checks as `floyd pipeline run`, nothing stored
        if len(json.dumps(stored)) > TARGET_MAX_BYTES:
            raise BadRequest(f"'target.request' is over {TARGET_MAX_BYTES} bytes.")
        return {"kind": "pipeline", "request": stored}

    def launch(self, owner: str, target: dict) -> Started:
        run = self.pipelines.submit(Caller(owner), dict(target["request"]))
        with self.pipelines.sessions() as s:
            run_id = s.scalar(select(PipelineRun.id).where(PipelineRun.owner == run["owner"],
                                                           PipelineRun.project == run["project"],
                                                           PipelineRun.number == run["number"]))
        return Started([int(run_id or 0)], [run["id"]])

    def still_going(self, s: Session, ids: list[int]) -> bool:
        if not ids:
            return False
        return any(state == RUN_RUNNING for state in s.scalars(select(PipelineRun.state).where(PipelineRun.id.in_(ids))))
