"""The ScheduleManager: schedules as records (create, list, show, pause/resume, delete).

When they come due is the clock's business (schedules/clock.py); what they start is a
:class:`~jobs_bridge.schedules.targets.Target`'s. A bad schedule is a 4xx and stores nothing.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.auth.rules import check_access
from jobs_bridge.datasets.records import iso
from jobs_bridge.errors import BadRequest, Conflict, NotFound
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import Schedule, ScheduleRun
from jobs_bridge.schedules.cron import check_cron, check_timezone, next_after
from jobs_bridge.schedules.records import schedule_json
from jobs_bridge.schedules.targets import Target
from jobs_bridge.timeutil import utcnow
from jobs_bridge.validate import json_bool, only_keys

CREATE_KEYS = ("name", "cron", "timezone", "allow_overlap", "paused", "target", "check_only")
UPDATE_KEYS = ("cron", "timezone", "allow_overlap", "paused")


class ScheduleManager(LoggingConfigurable):
    max_per_user = Integer(
        100, help="Most schedules one user may have; one more answers 409. Default: 100.").tag(config=True)
    runs_shown = Integer(
        20, help="How many of a schedule's newest runs its record shows (older ones are deleted). Default: 20."
    ).tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], targets: Mapping[str, Target], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.targets = targets

    def target_of(self, kind: object) -> Target:
        if not isinstance(kind, str) or kind not in self.targets:
            raise BadRequest(f"Unknown target kind {kind!r}; allowed: {', '.join(sorted(self.targets))}.")
        return self.targets[kind]

    @staticmethod
    def find(s: Session, caller: Caller, owner: str, name: str, *, write: bool = False) -> Schedule:
        check_owner(owner)
        check_name(name, "schedule name")
        sched = s.scalar(select(Schedule).where(Schedule.owner == owner, Schedule.name == name))
        if sched is None:
            raise NotFound(f"Schedule {owner}/{name} not found.")
        check_access(caller, sched.owner, False, f"Schedule {owner}/{name}", write=write)
        return sched

    def create(self, caller: Caller, body: dict) -> dict:
        """A new schedule; with ``check_only``, only the checks of everything but the target (the
        CLI asks before it uploads the code), and nothing is stored."""
        only_keys(body, CREATE_KEYS)
        name = check_name(body.get("name"), "schedule name")
        cron = check_cron(body.get("cron"))
        tz = check_timezone(body.get("timezone", "UTC"))
        overlap = json_bool(body.get("allow_overlap", False), "allow_overlap")
        paused = json_bool(body.get("paused", False), "paused")
        check_only = json_bool(body.get("check_only", False), "check_only")
        target = body.get("target")
        if not check_only and not isinstance(target, dict):
            raise BadRequest("'target' must be {'kind': 'job', 'request': <a job request>} or "
                             "{'kind': 'pipeline', 'request': <a pipeline run request>}.")
        with self.sessions.begin() as s:
            self._check_room(s, caller, name)
            if check_only:
                return {"name": name, "cron": cron, "timezone": tz, "next_run_at": iso(next_after(cron, tz, utcnow()))}
            assert isinstance(target, dict)
            kind = target.get("kind", "job")
            stored = self.target_of(kind).check(s, caller, target)
            sched = Schedule(owner=caller.name, name=name, cron=cron, timezone=tz, kind=kind,
                             target=json.dumps(stored), allow_overlap=overlap, paused=paused,
                             next_run_at=next_after(cron, tz, utcnow()), last_jobs="[]", created_at=utcnow())
            s.add(sched)
            s.flush()
            return schedule_json(sched, [])

    def _check_room(self, s: Session, caller: Caller, name: str) -> None:
        if s.scalar(select(Schedule.id).where(Schedule.owner == caller.name, Schedule.name == name)):
            raise Conflict(f"You already have a schedule named {name}; delete it first or choose another name.")
        count = s.scalar(select(func.count()).select_from(Schedule).where(Schedule.owner == caller.name)) or 0
        if count >= self.max_per_user:
            raise Conflict(f"You have {count} schedules, the most allowed; delete one first.")

    def list(self, caller: Caller, owner: str | None = None) -> builtins.list[dict]:
        with self.sessions() as s:
            query = select(Schedule).order_by(Schedule.owner, Schedule.name)
            if owner is not None:
                query = query.where(Schedule.owner == check_owner(owner))
            if not caller.admin:
                query = query.where(Schedule.owner == caller.name)
            return [schedule_json(x) for x in s.scalars(query)]

    def get(self, caller: Caller, owner: str, name: str) -> dict:
        with self.sessions() as s:
            sched = self.find(s, caller, owner, name)
            runs = s.scalars(select(ScheduleRun).where(ScheduleRun.schedule_id == sched.id)
                             .order_by(ScheduleRun.id.desc()).limit(self.runs_shown))
            return schedule_json(sched, builtins.list(runs))

    def update(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        """Pause, resume (the next due time counts from now: no catching up on a pause), change
        the cron, time zone or overlap rule."""
        only_keys(body, UPDATE_KEYS)
        with self.sessions.begin() as s:
            sched = self.find(s, caller, owner, name, write=True)
            if "cron" in body:
                sched.cron = check_cron(body["cron"])
            if "timezone" in body:
                sched.timezone = check_timezone(body["timezone"])
            if "allow_overlap" in body:
                sched.allow_overlap = json_bool(body["allow_overlap"], "allow_overlap")
            if "paused" in body:
                sched.paused = json_bool(body["paused"], "paused")
            sched.next_run_at = next_after(sched.cron, sched.timezone, utcnow())
        return self.get(caller, owner, name)

    def delete(self, caller: Caller, owner: str, name: str) -> None:
        """The schedule and its runs; the jobs it started stay."""
        with self.sessions.begin() as s:
            sched = self.find(s, caller, owner, name, write=True)
            s.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == sched.id))
            s.delete(sched)
