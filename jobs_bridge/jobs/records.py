"""JSON shape of a job, the record that reproduces it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from jobs_bridge.datasets.records import iso as iso_time
from jobs_bridge.orm import Job


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else iso_time(dt)


def duration(job: Job) -> float | None:
    if job.started_at is None:
        return None
    start = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=timezone.utc)
    end = job.finished_at or datetime.now(timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    return round((end - start).total_seconds(), 3)


def job_name(job: Job) -> str:
    return f"{job.owner}/{job.project}/{job.number}"


def job_json(job: Job, latest: dict[str, float] | None = None, parent: str | None = None,
             packages: int | None = None) -> dict:
    return {
        "id": job_name(job),
        "owner": job.owner,
        "project": f"{job.owner}/{job.project}",
        "number": job.number,
        "state": job.state,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "command": job.command,
        "notebook": job.notebook,
        "environment": job.environment,
        "image": job.image,
        "image_id": job.image_id,
        "resources": {"cpus": job.cpus, "memory": job.memory, "gpus": job.gpus,
                      "gpu_devices": json.loads(job.gpu_devices)},
        # The host path each input is mounted from stays inside the bridge.
        "inputs": [{k: v for k, v in i.items() if k != "path"} for i in json.loads(job.inputs)],
        "params": json.loads(job.params),
        "tags": json.loads(job.tags or "{}"),
        "mlflow_run_id": str(job.id),  # the job's run id in the MLflow API (jobs/tracking.py)
        "max_runtime": job.max_runtime,
        "retries": job.retries,  # runs again after a lost run at most this often (jobs/retries.py)
        "attempt": len(json.loads(job.attempts or "[]")) + 1,
        "attempts": json.loads(job.attempts or "[]"),  # the lost ones, oldest first
        "message": job.message,
        "task": job.task,
        "snapshot": job.snapshot,
        "requirements_hash": job.requirements_hash or None,
        "parent": parent,
        "group": job.group_id,
        "executor": job.executor,
        "code_mount": job.code_mount or None,  # how /floyd/code was made: overlay, reflink or copy
        "created_by": job.created_by,
        "created_at": iso(job.created_at),
        "picked_at": iso(job.picked_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration": duration(job),
        "latest_metrics": latest or {},
        "package_count": packages,
    }
