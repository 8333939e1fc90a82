"""The schedule clock: every ``tick_seconds`` it starts what has come due.

A schedule keeps one ``next_run_at``. When it is due, the clock moves it to the first time after
*now* before starting anything, so a bridge that was down for many due times starts one run at
its next tick (the run records how many due times it stands for, ``missed``), and a crash between
the move and the start loses a run instead of doubling one. A run whose previous run still goes
is recorded as skipped, unless the schedule allows overlap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.errors import FloydError, translate
from jobs_bridge.orm import Schedule, ScheduleRun
from jobs_bridge.schedules.cron import due_since, next_after
from jobs_bridge.schedules.targets import Started, Target
from jobs_bridge.timeutil import aware, utcnow

OVERLAP_REASON = "the previous run is still going (allow_overlap is off)"


class ScheduleClock(LoggingConfigurable):
    tick_seconds = Float(
        5.0, help="Seconds between looks for schedules that came due: how late a run may start. A five-field "
        "cron is at most once a minute; tests use a six-field one (seconds) and a short tick. Default: 5.",
    ).tag(config=True)
    keep_runs = Integer(100, help="Runs kept per schedule (older records are deleted). Default: 100.").tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], targets: Mapping[str, Target], executor: ThreadPoolExecutor,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.targets = targets
        self.executor = executor
        self._task: asyncio.Future[None] | None = None
        self._closing = False

    def tick(self, now: datetime | None = None) -> int:
        """Start every schedule due at ``now`` (blocking); returns how many came due."""
        now = now or utcnow()
        with self.sessions() as s:
            due = list(s.scalars(select(Schedule.id).where(Schedule.paused.is_(False), Schedule.next_run_at <= now)))
        for sched_id in due:
            self.fire(sched_id, now)
        return len(due)

    def fire(self, sched_id: int, now: datetime) -> None:
        """Move the schedule on, then start its target (or record why not)."""
        with self.sessions.begin() as s:
            sched = s.get(Schedule, sched_id)
            if sched is None or sched.paused or sched.next_run_at is None or aware(sched.next_run_at) > now:
                return
            due_at, missed = due_since(sched.cron, sched.timezone, aware(sched.next_run_at), now)
            sched.next_run_at = next_after(sched.cron, sched.timezone, now)
            target = self.targets.get(sched.kind)
            going = target is not None and not sched.allow_overlap and \
                target.still_going(s, json.loads(sched.last_jobs))
            owner, kind, stored = sched.owner, sched.kind, json.loads(sched.target)
        run = ScheduleRun(schedule_id=sched_id, due_at=due_at, fired_at=now, missed=missed, outcome="skipped",
                          reason=OVERLAP_REASON if going else "", jobs="[]")
        started: Started | None = None
        if target is None:
            run.outcome, run.reason = "failed", f"this bridge cannot start a {kind!r} target"
        elif not going:
            try:
                started = target.launch(owner, stored)
                run.outcome, run.jobs = "started", json.dumps(started.names)
            except FloydError as exc:  # the snapshot was deleted, the project is gone, the engine is down
                run.outcome, run.reason = "failed", exc.message
        self.record(run, started)

    def record(self, run: ScheduleRun, started: Started | None) -> None:
        with self.sessions.begin() as s:
            sched = s.get(Schedule, run.schedule_id)
            if sched is None:  # deleted meanwhile: the jobs stay, there is nothing to record on
                return
            if started is not None:
                sched.last_jobs = json.dumps(started.ids)
            s.add(run)
            s.flush()
            oldest_kept = s.scalar(select(ScheduleRun.id).where(ScheduleRun.schedule_id == run.schedule_id)
                                   .order_by(ScheduleRun.id.desc()).offset(self.keep_runs - 1).limit(1))
            if oldest_kept is not None:
                s.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == run.schedule_id,
                                                    ScheduleRun.id < oldest_kept))
            what = f"{sched.owner}/{sched.name}: {run.outcome} {run.jobs}" + (f" ({run.reason})" if run.reason else "")
        self.log.info("Schedule %s", what)

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            try:
                await loop.run_in_executor(self.executor, self.tick)
            except Exception as exc:  # the database is down or full: the next tick tries again
                if translate(exc) is None:
                    self.log.exception("The schedule clock failed")
                else:
                    self.log.warning("The schedule clock could not run (%s); trying again", exc)
            await asyncio.sleep(self.tick_seconds)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
