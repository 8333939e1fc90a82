"""Job metrics: points from log lines and from ``POST …/metrics`` are buffered and written in
batches (one insert per flush, not one per line); reads give a job's series and the latest value
per series (the row with the highest id per job and name)."""

from __future__ import annotations

import json

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.errors import BadRequest
from jobs_bridge.jobs.logs import MetricBuffer, parse_metric
from jobs_bridge.orm import JobMetric

MAX_REPORTED = 10_000
MAX_HELD = 100_000  # points kept in memory while they cannot be written


class JobMetrics:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.buffer = MetricBuffer()

    def add(self, job_id: int, name: str, value: float, step: int | None) -> None:
        self.buffer.add(job_id, name, value, step)

    def add_lines(self, job_id: int, lines: list[str]) -> None:
        """Every line of a job's output that is a metric (``{"metric": …, "value": …}``)."""
        for line in lines:
            parsed = parse_metric(line)
            if parsed:
                self.buffer.add(job_id, *parsed)

    def report(self, job_id: int, items: object) -> int:
        """Points a job (or its owner) posted: all accepted, or a 400 naming the bad one."""
        if not isinstance(items, list) or len(items) > MAX_REPORTED:
            raise BadRequest("'metrics' must be a list of {'metric', 'value', 'step'} (at most 10,000).")
        count = 0
        for item in items:
            parsed = parse_metric(json.dumps(item)) if isinstance(item, dict) else None
            if parsed is None:
                raise BadRequest(f"Invalid metric {item!r}: expected {{'metric': name, 'value': number, 'step': int}}.")
            self.buffer.add(job_id, *parsed)
            count += 1
        return count

    def flush(self) -> None:
        """Write what is buffered (blocking: call it in a thread)."""
        rows = self.buffer.take()
        if not rows:
            return
        try:
            with self.sessions.begin() as s:
                s.execute(insert(JobMetric), rows)
        except Exception:  # the database is down or its disk full: keep them for the next flush
            self.buffer.rows[:0] = rows[-MAX_HELD:]
            del self.buffer.rows[:-MAX_HELD]
            raise

    @staticmethod
    def latest(s: Session, job_ids: list[int]) -> dict[int, dict[str, float]]:
        if not job_ids:
            return {}
        newest = (select(JobMetric.job_id, JobMetric.name, func.max(JobMetric.id).label("mid"))
                  .where(JobMetric.job_id.in_(job_ids)).group_by(JobMetric.job_id, JobMetric.name).subquery())
        rows = s.execute(select(JobMetric.job_id, JobMetric.name, JobMetric.value)
                         .join(newest, JobMetric.id == newest.c.mid))
        out: dict[int, dict[str, float]] = {}
        for job_id, name, value in rows:
            out.setdefault(job_id, {})[name] = value
        return out

    @staticmethod
    def series(s: Session, job_id: int) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for name, step, value, ts in s.execute(
            select(JobMetric.name, JobMetric.step, JobMetric.value, JobMetric.ts)
            .where(JobMetric.job_id == job_id).order_by(JobMetric.id)
        ):
            out.setdefault(name, []).append({"step": step, "value": value, "ts": ts})
        return out
