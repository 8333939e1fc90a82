"""JSON shape of a schedule and of its runs."""

from __future__ import annotations

import json

from jobs_bridge.datasets.records import iso
from jobs_bridge.orm import Schedule, ScheduleRun


def run_json(run: ScheduleRun) -> dict:
    return {"due_at": iso(run.due_at), "fired_at": iso(run.fired_at), "missed": run.missed,
            "outcome": run.outcome, "reason": run.reason, "jobs": json.loads(run.jobs)}


def schedule_json(sched: Schedule, runs: list[ScheduleRun] | None = None) -> dict:
    out = {
        "owner": sched.owner,
        "name": sched.name,
        "cron": sched.cron,
        "timezone": sched.timezone,
        "target": json.loads(sched.target),
        "allow_overlap": sched.allow_overlap,
        "paused": sched.paused,
        "next_run_at": None if sched.paused or sched.next_run_at is None else iso(sched.next_run_at),
        "created_at": iso(sched.created_at),
    }
    if runs is not None:
        out["runs"] = [run_json(r) for r in runs]
    return out
