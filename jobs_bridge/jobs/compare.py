"""Runs side by side: the params that differ and each metric's last, min and max per run, for
``floyd compare``, the compare page and a sweep's ranking."""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import BadRequest, NotFound
from jobs_bridge.inputs import JOB_OUTPUT_RE, find_job
from jobs_bridge.jobs.metrics import JobMetrics
from jobs_bridge.jobs.records import job_name
from jobs_bridge.names import shown
from jobs_bridge.orm import Job, JobMetric

MAX_RUNS = 100
MAX_JOBS_TEXT = 1000  # characters of ?jobs= (openapi.yaml says the same); a sweep is named by its group
MAX_METRIC = 128  # a metric's name (job_metrics.name)


def parse_jobs(raw: str, caller: Caller) -> list[tuple[str, str, str]]:
    """``alice/proj/12,proj/13`` → [(owner, project, number)]; a 400 for anything else."""
    if len(raw) > MAX_JOBS_TEXT:
        raise BadRequest(f"?jobs= is {len(raw)} characters; at most {MAX_JOBS_TEXT}. Compare a sweep with ?group=.")
    items = [p.strip() for p in raw.split(",") if p.strip()]
    if not items:
        raise BadRequest("Name the runs to compare: ?jobs=OWNER/PROJECT/N,… or ?group=SWEEP_ID.")
    if len(items) > MAX_RUNS:
        raise BadRequest(f"At most {MAX_RUNS} runs can be compared at once; {len(items)} were named.")
    out = []
    for item in items:
        m = JOB_OUTPUT_RE.match(item)
        if not m:
            raise BadRequest(f"Invalid job {shown(item)}: use OWNER/PROJECT/NUMBER (e.g. alice/mnist-cnn/12).")
        out.append((m.group("owner") or caller.name, m.group("project"), m.group("number")))
    return out


def _stats(s: Session, job_ids: list[int]) -> dict[int, dict[str, dict[str, float]]]:
    latest = JobMetrics.latest(s, job_ids)
    out: dict[int, dict[str, dict[str, float]]] = {}
    for job_id, name, low, high, count in s.execute(
            select(JobMetric.job_id, JobMetric.name, func.min(JobMetric.value), func.max(JobMetric.value),
                   func.count()).where(JobMetric.job_id.in_(job_ids)).group_by(JobMetric.job_id, JobMetric.name)):
        out.setdefault(job_id, {})[name] = {"last": latest[job_id][name], "min": low, "max": high, "count": count}
    return out


def _rank_key(metric: str, order: str) -> Any:
    def key(run: dict) -> tuple[bool, float]:
        value = run["metrics"].get(metric, {}).get("last")
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return missing, 0.0 if missing else (value if order == "min" else -value)
    return key


class RunComparison:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def compare(self, caller: Caller, jobs: str | None, group: int | None, rank: str | None = None,
                order: str = "min", series: bool = False) -> dict:
        if (jobs is None) == (group is None):
            raise BadRequest("Give either ?jobs=OWNER/PROJECT/N,… or ?group=SWEEP_ID.")
        if order not in ("min", "max"):
            raise BadRequest(f"Invalid order {shown(order)}: 'min' (lower is better) or 'max'.")
        with self.sessions() as s:
            rows = self._rows(s, caller, jobs, group)
            stats = _stats(s, [j.id for j in rows])
            runs = [{"id": job_name(j), "state": j.state, "group": j.group_id, "params": json.loads(j.params),
                     "metrics": stats.get(j.id, {}),
                     **({"series": JobMetrics.series(s, j.id)} if series else {})} for j in rows]
        names = sorted({k for r in runs for k in r["params"]})
        differing = [n for n in names if len({json.dumps(r["params"].get(n), sort_keys=True) for r in runs}) > 1]
        metrics = sorted({m for r in runs for m in r["metrics"]}, key=lambda n: (n.startswith("system/"), n))
        if rank is not None:
            if len(rank) > MAX_METRIC or rank not in metrics:
                raise BadRequest(f"No run reported the metric {shown(rank)}; one of: {', '.join(metrics) or 'none'}.")
            runs.sort(key=_rank_key(rank, order))
        return {"group": group, "runs": runs, "params": names, "differing": differing, "metrics": metrics,
                "rank": {"metric": rank, "order": order} if rank else None}

    @staticmethod
    def _rows(s: Session, caller: Caller, jobs: str | None, group: int | None) -> list[Job]:
        if jobs is not None:
            return [find_job(s, caller, *ref) for ref in parse_jobs(jobs, caller)]
        q = select(Job).where(Job.group_id == group).order_by(Job.number).limit(1000)
        if not caller.admin:
            q = q.where(Job.owner == caller.name)
        rows = list(s.scalars(q))
        if not rows:
            raise NotFound(f"Sweep {group} not found.")
        return rows
