"""Submitting from the Lab (the magics, ``floyd.Job.run``, the Run button): the workspace's code
directory and project, through the one request builder and code uploader the CLI uses, so a job
from a notebook carries the same floyd.yml defaults as ``floyd run`` in a terminal."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from floyd.client.http import FloydClient
from floyd.client.request import JobOptions, build_job_request
from floyd.client.submit import Submitted, snapshot_request, submit_job
from floyd.lab.workspace import code_dir, make_client, workspace_project


def submit_from_lab(what: Mapping[str, str], options: JobOptions, extra: Mapping[str, bytes] | None = None,
                    project: str | None = None, root: Path | None = None,
                    client: FloydClient | None = None) -> Submitted:
    """``what`` (``{"command"}``/``{"notebook"}``) with ``options`` over floyd.yml of the code directory."""
    root = root or code_dir()
    project = project or workspace_project(root)
    request = build_job_request(project, what, options, root)
    return submit_job(client or make_client(), request, root, extra)


def schedule_from_lab(what: Mapping[str, str], options: JobOptions, schedule: Mapping[str, object],
                      project: str | None = None, root: Path | None = None,
                      client: FloydClient | None = None) -> dict:
    """The same request stored as a schedule ``{name, cron, timezone?}`` (the Lab's "On a
    schedule"): checked first, then the code is snapshotted once and every run runs that."""
    root = root or code_dir()
    project = project or workspace_project(root)
    client = client or make_client()
    request = build_job_request(project, what, options, root)
    body = {k: schedule[k] for k in ("name", "cron", "timezone") if k in schedule}
    client.check_schedule(body)
    ready, _ = snapshot_request(client, request, root)
    return client.create_schedule({**body, "target": {"kind": "job", "request": ready.to_body()}})
