"""A lost run of a job that asked for retries runs again, as the next attempt of the same job.

Only ``lost`` counts (its machine went away, its engine restarted: nothing the job did); a job
that failed by its own exit code, was stopped or ran out of time is never run again. The job
keeps its number, its slot and its output directory (a job that writes checkpoints can resume
from them); its code is made afresh from the snapshot; every lost attempt is kept in
``jobs.attempts`` for the job page and ``floyd info``. ClearML's "retry on failure" re-enqueues
the same task the same way."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.jobs import states
from jobs_bridge.jobs.records import iso, job_name
from jobs_bridge.orm import Job
from jobs_bridge.timeutil import utcnow


@dataclass
class Retry:
    name: str  # owner/project/number
    attempt: int  # the attempt about to start: 2, 3, …
    total: int  # 1 + the retries asked for

    def log_line(self, reason: str) -> str:
        return (f"[floyd] attempt {self.attempt - 1} was lost: {reason}; running the job again "
                f"(attempt {self.attempt} of {self.total})")


def attempts_of(job: Job) -> list[dict]:
    """The job's lost attempts, oldest first."""
    return list(json.loads(job.attempts or "[]"))


def take_retry(sessions: sessionmaker[Session], job_id: int, reason: str) -> Retry | None:
    """Blocking. When the job has retries left: record the lost attempt and put the job back to
    ``starting`` (it keeps its slot); else None and the job ends ``lost``."""
    with sessions.begin() as s:
        job = s.get(Job, job_id)
        if job is None or job.state not in states.ACTIVE:
            return None
        past = attempts_of(job)
        if len(past) >= job.retries:
            return None
        past.append({"attempt": len(past) + 1, "state": states.LOST, "reason": reason,
                     "started_at": iso(job.started_at), "finished_at": iso(utcnow())})
        job.attempts = json.dumps(past)
        retry = Retry(job_name(job), len(past) + 1, job.retries + 1)
        job.state = states.STARTING
        job.reason = f"attempt {retry.attempt} of {retry.total}: attempt {retry.attempt - 1} was lost ({reason})"
        job.handle = ""
        job.started_at = None
        job.exit_code = None
        return retry
