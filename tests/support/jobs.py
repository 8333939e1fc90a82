"""Job helpers: upload a project's code and submit a job, then wait for the job to reach a state."""

from __future__ import annotations

import time
from pathlib import Path

from floyd.client import FloydClient
from floyd.client.ignore import IgnoreRules
from floyd.client.transfer import upload_code
from tests.support.platform import User, write_tree


def client_for(user: User) -> FloydClient:
    return FloydClient(user.platform.url, user.token)


def submit(user: User, project: str, files: dict[str, bytes], tmp: Path, **spec) -> dict:
    """Create the project if needed, snapshot ``files``, submit, and return the job record."""
    user.api("POST", "projects", json={"name": project})
    root = write_tree(tmp / f"code-{project}-{time.monotonic_ns()}", files)
    client = client_for(user)
    result = upload_code(client, user.name, project, root, IgnoreRules.for_directory(root).keep)
    body = {"project": f"{user.name}/{project}", "snapshot": result.version["id"], **spec}
    r = user.api("POST", "jobs", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def wait_state(user: User, job_id: str, states: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = user.api("GET", f"jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach {states}: {job}\n{user.platform.log_tail(40)}")
