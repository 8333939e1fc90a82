"""Submitting from the Lab (the magics, ``floyd.Job.run``, the Run button): the workspace's code
directory and project, through the one request builder and code uploader the CLI uses, so a job
from a notebook carries the same floyd.yml defaults as ``floyd run`` in a terminal."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from floyd.client.http import FloydClient
from floyd.client.request import JobOptions, build_job_request
from floyd.client.submit import Submitted, submit_job
from floyd.lab.workspace import code_dir, make_client, workspace_project


def submit_from_lab(what: Mapping[str, str], options: JobOptions, extra: Mapping[str, bytes] | None = None,
                    project: str | None = None, root: Path | None = None,
                    client: FloydClient | None = None) -> Submitted:
    """``what`` (``{"command"}``/``{"notebook"}``) with ``options`` over floyd.yml of the code directory."""
    root = root or code_dir()
    project = project or workspace_project(root)
    request = build_job_request(project, what, options, root)
    return submit_job(client or make_client(), request, root, extra)
