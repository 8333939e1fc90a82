"""Reading jobs as a caller sees them: one job, lists, metrics, packages, a job by its token.

Nothing here changes a job; the queue and the runner do (jobs/queue.py, jobs/runner.py)."""

from __future__ import annotations

import builtins
import json

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.auth.identity import Caller
from jobs_bridge.auth.tokens import token_hash
from jobs_bridge.errors import BadRequest
from jobs_bridge.inputs import find_job
from jobs_bridge.jobs import states
from jobs_bridge.jobs.metrics import JobMetrics
from jobs_bridge.jobs.records import job_json, job_name
from jobs_bridge.orm import DatasetVersion, ImagePackages, Job


class JobReader:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def find(self, s: Session, caller: Caller, owner: str, project: str, number: int | str) -> Job:
        return find_job(s, caller, owner, project, number)

    def record(self, s: Session, job: Job) -> dict:
        """The full record: with the parent's name, the latest metrics and the package count."""
        parent = s.get(Job, job.parent_id) if job.parent_id else None
        packages = s.get(ImagePackages, job.image_id) if job.image_id else None
        return job_json(job, JobMetrics.latest(s, [job.id]).get(job.id), job_name(parent) if parent else None,
                        len(json.loads(packages.packages)) if packages else None)

    def job_id(self, caller: Caller, owner: str, project: str, number: int | str) -> int:
        with self.sessions() as s:
            return self.find(s, caller, owner, project, number).id

    def state_of(self, job_id: int) -> str:
        with self.sessions() as s:
            job = s.get(Job, job_id)
            return job.state if job else states.LOST

    def get(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        with self.sessions() as s:
            return self.record(s, self.find(s, caller, owner, project, number))

    def list(self, caller: Caller, project: str | None = None, group: int | None = None, state: str | None = None,
             limit: int = 200) -> builtins.list[dict]:
        with self.sessions() as s:
            q = select(Job).order_by(Job.id.desc()).limit(min(max(limit, 1), 1000))
            if not caller.admin:
                q = q.where(Job.owner == caller.name)
            if project:
                owner, _, name = project.partition("/")
                if not name:
                    owner, name = caller.name, owner
                q = q.where(Job.owner == owner, Job.project == name)
            if group is not None:
                q = q.where(Job.group_id == group)
            if state:
                if state not in states.ALL:
                    raise BadRequest(f"Unknown state {state!r}; one of: {', '.join(states.ALL)}.")
                q = q.where(Job.state == state)
            jobs = list(s.scalars(q))
            latest = JobMetrics.latest(s, [j.id for j in jobs])
            return [job_json(j, latest.get(j.id)) for j in jobs]

    def metrics_of(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        with self.sessions() as s:
            job = self.find(s, caller, owner, project, number)
            return {"job": job_name(job), "series": JobMetrics.series(s, job.id)}

    def packages(self, caller: Caller, owner: str, project: str, number: int | str) -> builtins.list[str]:
        with self.sessions() as s:
            job = self.find(s, caller, owner, project, number)
            row = s.get(ImagePackages, job.image_id) if job.image_id else None
            return json.loads(row.packages) if row else []

    def job_by_token(self, token: str) -> Job | None:
        with self.sessions() as s:
            return s.scalar(select(Job).where(Job.token_hash == token_hash(token)))

    @staticmethod
    def version_used_by(s: Session, version: DatasetVersion) -> str | None:
        """Keep a dataset version that a job used (its record must stay reproducible)."""
        job = s.scalar(select(Job).where(Job.inputs.contains(version.version_id)).order_by(Job.id).limit(1))
        return f"job {job_name(job)} used it" if job is not None else None
