"""Pipeline run and step states, and the JSON record of a run (what the API, CLI and page read)."""

from __future__ import annotations

import json

from jobs_bridge.jobs.records import iso
from jobs_bridge.orm import Job, PipelineRun

# Step states. A running step shows its job's state (queued, starting, running) in ``job_state``.
WAITING = "waiting"  # for the steps it takes inputs from
RUNNING = "running"  # its job is queued or running
SUCCEEDED = "succeeded"
REUSED = "reused"  # an earlier succeeded job with the same reuse key stands for it
FAILED = "failed"
STOPPED = "stopped"
SKIPPED = "skipped"  # an upstream step failed or was stopped, or the run was stopped first
DONE = frozenset({SUCCEEDED, REUSED})
ENDED = frozenset({SUCCEEDED, REUSED, FAILED, STOPPED, SKIPPED})

# Run states.
RUN_RUNNING = "running"
RUN_FINISHED = frozenset({"succeeded", "failed", "stopped"})


def run_name(run: PipelineRun) -> str:
    return f"{run.owner}/{run.project}/{run.number}"


def run_json(run: PipelineRun, jobs: dict[int, Job]) -> dict:
    """The run with its steps in topological order; ``jobs`` holds the steps' jobs by id."""
    steps = []
    for st in run.steps:
        job = jobs.get(st.job_id) if st.job_id is not None else None
        steps.append({
            "name": st.name, "state": st.state, "reason": st.reason, "needs": json.loads(st.needs),
            "job": f"{job.owner}/{job.project}/{job.number}" if job else None,
            "job_number": job.number if job else None, "job_state": job.state if job else None,
            "reused_from": job.number if job and st.reused else None, "saved_as": st.saved_as or None,
            "model_saved_as": st.model_saved_as or None,
        })
    spec = json.loads(run.spec)
    return {
        "id": run_name(run), "owner": run.owner, "project": run.project, "number": run.number,
        "pipeline": run.name, "state": run.state, "snapshot": run.snapshot, "no_reuse": run.no_reuse,
        "save_outputs": spec.get("save_outputs", {}),
        "save_models": spec.get("save_models", {}), "created_by": run.created_by,
        "created_at": iso(run.created_at), "finished_at": iso(run.finished_at), "steps": steps,
    }
