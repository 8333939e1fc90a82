"""The queue policy: which queued jobs start now, and why each of the others waits.

Pure on purpose: plain data in, a :class:`Decision` out; no database, no Docker, no clock. The
round-robin order comes in as ``last_start`` (owner → a rank that grows with every start), so
the fairness rules are tested as they are (tests/jobs/test_queue_policy.py) and
:class:`~jobs_bridge.jobs.queue.JobQueue` only reads rows and writes states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

UNLIMITED = 1 << 30


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting in the queue, as the policy sees it."""

    id: int  # job ids grow with submission: the smallest is the oldest
    owner: str
    gpus: int = 0
    group_id: int | None = None  # its sweep group, if any


@dataclass(frozen=True)
class ActiveJob:
    """A job that holds a slot (starting or running)."""

    owner: str
    group_id: int | None = None


@dataclass(frozen=True)
class QueueLimits:
    max_running: int = 0  # on the whole platform; 0 = no limit
    max_running_per_user: int = 0  # 0 = no limit


@dataclass
class Decision:
    start: list[int] = field(default_factory=list)  # job ids, in the order they were picked
    reasons: dict[int, str] = field(default_factory=dict)  # job id → why it still waits
    last_start: dict[str, int] = field(default_factory=dict)  # the round-robin ranks after these starts


@dataclass
class _Tally:
    """What is taken while one decision is made: slots, GPUs, per-user and per-sweep counts."""

    free: int
    gpus_free: int
    per_user: dict[str, int]
    per_group: dict[int, int]
    last_start: dict[str, int]

    def take(self, job: QueuedJob) -> None:
        self.free -= 1
        self.gpus_free -= job.gpus
        self.per_user[job.owner] = self.per_user.get(job.owner, 0) + 1
        if job.group_id is not None:
            self.per_group[job.group_id] = self.per_group.get(job.group_id, 0) + 1
        self.last_start[job.owner] = max(self.last_start.values(), default=0) + 1


def pick(queued: Sequence[QueuedJob], active: Sequence[ActiveJob], limits: QueueLimits, *, gpus_free: int,
         sweep_limits: Mapping[int, int], last_start: Mapping[str, int]) -> Decision:
    """Fair share: the owner with the fewest active jobs goes next; among equals the one whose
    last job started longest ago (round robin; never = first); then the oldest job.

    The global, per-user and per-sweep (``sweep_limits``: group id → concurrency, 0 = none)
    limits hold; a GPU job waits until ``gpus_free`` covers it, without holding up CPU jobs.
    """
    tally = _tally(active, limits, gpus_free, last_start)
    waiting = list(queued)
    decision = Decision()
    while tally.free > 0 and waiting:
        candidates = [j for j in waiting if _may_start(j, tally, limits, sweep_limits)]
        if not candidates:
            break
        job = min(candidates, key=lambda j: (tally.per_user.get(j.owner, 0), tally.last_start.get(j.owner, 0), j.id))
        waiting.remove(job)
        tally.take(job)
        decision.start.append(job.id)
    for job in waiting:
        decision.reasons[job.id] = why_waiting(job, tally, limits, sweep_limits)
    decision.last_start = tally.last_start
    return decision


def _tally(active: Sequence[ActiveJob], limits: QueueLimits, gpus_free: int, last_start: Mapping[str, int]) -> _Tally:
    per_user: dict[str, int] = {}
    per_group: dict[int, int] = {}
    for a in active:
        per_user[a.owner] = per_user.get(a.owner, 0) + 1
        if a.group_id is not None:
            per_group[a.group_id] = per_group.get(a.group_id, 0) + 1
    free = limits.max_running - len(active) if limits.max_running else UNLIMITED
    return _Tally(free, gpus_free, per_user, per_group, dict(last_start))


def _may_start(job: QueuedJob, tally: _Tally, limits: QueueLimits, sweep_limits: Mapping[int, int]) -> bool:
    per_user_ok = not limits.max_running_per_user or tally.per_user.get(job.owner, 0) < limits.max_running_per_user
    sweep = sweep_limits.get(job.group_id, 0) if job.group_id is not None else 0
    sweep_ok = not sweep or tally.per_group.get(job.group_id or 0, 0) < sweep
    return per_user_ok and sweep_ok and job.gpus <= tally.gpus_free


def why_waiting(job: QueuedJob, tally: _Tally, limits: QueueLimits, sweep_limits: Mapping[int, int]) -> str:
    """The limit that holds ``job``, in words shown as the job's ``reason``."""
    if tally.free <= 0:
        return f"waiting: the platform runs at most {limits.max_running} jobs at once"
    if job.gpus > tally.gpus_free:
        return f"waiting for {job.gpus} free GPU(s)"
    if limits.max_running_per_user and tally.per_user.get(job.owner, 0) >= limits.max_running_per_user:
        return f"waiting: at most {limits.max_running_per_user} running jobs per user"
    if job.group_id is not None and sweep_limits.get(job.group_id):
        return f"waiting: the sweep runs at most {sweep_limits[job.group_id]} at once"
    return "waiting for a free slot"
