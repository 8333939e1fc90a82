"""The job queue: submission (numbers per project, sweep groups) and the pick of what starts next.

The pick reads the queue and the active jobs, asks the pure policy (jobs/policy.py) and writes
its decision back: picked jobs become ``starting``, every other queued job gets the reason it
waits. Running a picked job is the JobRunner's business (jobs/runner.py).
"""

from __future__ import annotations

import json
import threading
from typing import cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import Unprocessable
from jobs_bridge.executors.base import EngineUnavailable, Executor, ExecutorError
from jobs_bridge.jobs import states
from jobs_bridge.jobs.policy import ActiveJob, QueuedJob, QueueLimits, pick
from jobs_bridge.jobs.records import job_json
from jobs_bridge.jobs.spec import JobSpec, SpecResolver
from jobs_bridge.orm import GpuLease, Job, JobGroup
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.timeutil import utcnow

FIRST_REASON = "waiting for a free slot"


class JobQueue(LoggingConfigurable):
    max_running = Integer(
        4, help="Jobs running at once on the whole platform (default 4; 0 = no limit).",
    ).tag(config=True)
    max_running_per_user = Integer(
        2, help="Jobs one user may have running at once (default 2; 0 = no limit); the rest wait in the queue.",
    ).tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, resolver: SpecResolver,
                 gpus: GpuAllocator, executor: Executor, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.resolver = resolver
        self.gpus = gpus
        self.executor = executor
        self._number_lock = threading.Lock()
        # One pick at a time: a submitting thread and the event loop's kick both pick, and two
        # transactions reading the same queued rows would start a job twice (or SQLite refuses one).
        self._pick_lock = threading.Lock()
        # Round robin between equal users: owner → rank of their last start (in memory: a
        # restarted bridge starts the rotation afresh).
        self._last_start: dict[str, int] = {}

    @property
    def limits(self) -> QueueLimits:
        return QueueLimits(self.max_running, self.max_running_per_user)

    # -- submitting (blocking: runs in a handler's thread) -------------------------------------
    def submit(self, caller: Caller, body: dict) -> dict:
        """Resolve ``body`` as ``caller`` and queue one job, or one per parameter set of a sweep."""
        with self.sessions() as s:
            spec = self.resolver.resolve(s, caller, body)
        try:
            image_id = self.executor.image_id(spec.env.image)
        except EngineUnavailable:  # a 503: nothing is queued, the client may try again
            raise
        except ExecutorError as exc:
            raise Unprocessable(exc.message) from None
        with self._number_lock, self.sessions.begin() as s:
            group_id = self._new_group(s, spec, body) if spec.sweep else None
            number = s.scalar(select(func.max(Job.number)).where(Job.owner == spec.owner,
                                                                 Job.project == spec.project)) or 0
            jobs = []
            for params in spec.sweep or [{}]:
                number += 1
                job = self._new_job(spec, {**spec.params, **params}, number, caller, image_id, group_id)
                s.add(job)
                s.flush()
                jobs.append(job)
            result = [job_json(j) for j in jobs]
            for job in jobs:
                self.layout.job_dir(job.owner, job.project, job.number).mkdir(parents=True, exist_ok=True)
        if group_id is not None:
            return {"group": {"id": group_id, "project": f"{spec.owner}/{spec.project}", "size": len(jobs),
                              "concurrency": spec.concurrency}, "jobs": result}
        return {"job": result[0]}

    @staticmethod
    def _new_group(s: Session, spec: JobSpec, body: dict) -> int:
        group = JobGroup(owner=spec.owner, project=spec.project, concurrency=spec.concurrency,
                         spec=json.dumps({"sweep": body.get("sweep"), "base_params": spec.params}))
        s.add(group)
        s.flush()
        return group.id

    def _new_job(self, spec: JobSpec, params: dict[str, str], number: int, caller: Caller, image_id: str,
                 group_id: int | None) -> Job:
        return Job(
            owner=spec.owner, project=spec.project, number=number, state=states.QUEUED, command=spec.command,
            notebook=spec.notebook, environment=spec.env.name, image=spec.env.image, image_id=image_id,
            cpus=spec.cpus, memory=spec.memory, gpus=spec.gpus, gpu_devices="[]",
            inputs=json.dumps([i.record() | {"path": i.path} for i in spec.inputs]),
            params=json.dumps(params), max_runtime=spec.max_runtime, message=spec.message, task=spec.task,
            snapshot=spec.snapshot, requirements_hash=spec.requirements_hash, parent_id=spec.parent_id,
            group_id=group_id, executor=self.executor.name, created_by=caller.name, reason=FIRST_REASON,
            retries=spec.retries,
        )

    # -- the pick (blocking: one transaction) ------------------------------------------------------
    def pick(self) -> list[int]:
        """Mark what may start now as ``starting`` and return those job ids, in pick order."""
        with self._pick_lock, self.sessions.begin() as s:
            active = [ActiveJob(owner, group_id) for owner, group_id in
                      s.execute(select(Job.owner, Job.group_id).where(Job.state.in_(states.ACTIVE)))]
            rows = {j.id: j for j in s.scalars(select(Job).where(Job.state == states.QUEUED).order_by(Job.id))}
            groups = {j.group_id for j in rows.values() if j.group_id is not None}
            sweep_limits = {g.id: g.concurrency for g in s.scalars(select(JobGroup).where(JobGroup.id.in_(groups)))}
            leased = s.scalar(select(func.count()).select_from(GpuLease)) or 0
            decision = pick([QueuedJob(j.id, j.owner, j.gpus, j.group_id) for j in rows.values()], active,
                            self.limits, gpus_free=len(self.gpus.devices) - leased, sweep_limits=sweep_limits,
                            last_start=self._last_start)
            self._last_start = decision.last_start
            picked_at = utcnow()  # one instant for the whole decision: it was made on one reading
            for job_id in decision.start:
                rows[job_id].state = states.STARTING
                rows[job_id].reason = ""
                rows[job_id].picked_at = picked_at
            for job_id, reason in decision.reasons.items():
                rows[job_id].reason = reason
            return decision.start

    def stop_queued(self, job_id: int) -> bool:
        """Stop a job that has not been picked yet; False when the pick got it first."""
        with self.sessions.begin() as s:
            result = s.execute(
                update(Job).where(Job.id == job_id, Job.state == states.QUEUED)
                .values(state=states.STOPPED, reason="stopped before it started", finished_at=utcnow())
            )
        return bool(cast(CursorResult, result).rowcount)  # an UPDATE's result is a CursorResult
