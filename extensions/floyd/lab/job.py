"""``floyd.Job``: a job of the platform, seen from a notebook (and started from one with ``Job.run``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from floyd.client.errors import FloydClientError
from floyd.client.http import FloydClient
from floyd.client.request import JobOptions
from floyd.lab.records import ENDED
from floyd.lab.submit import submit_from_lab
from floyd.lab.targets import script_or_notebook
from floyd.lab.workspace import code_dir, job_output_dir, make_client, relative_to_code, workspace_project


def parse_job_name(name: str | int, project: str | None = None) -> tuple[str, str, int]:
    """``12`` (a job of the workspace's project), ``PROJECT/12`` or ``OWNER/PROJECT/12``."""
    text = str(name).strip().strip("/")
    parts = [p for p in text.split("/") if p]
    if parts and parts[-1] == "output":
        parts.pop()
    if not 1 <= len(parts) <= 3 or not parts[-1].isdigit():
        raise FloydClientError(f"Cannot read job name {name!r}: use N, PROJECT/N or OWNER/PROJECT/N.")
    number = int(parts[-1])
    if len(parts) == 3:
        return parts[0], parts[1], number
    owner, proj = (project or workspace_project()).split("/", 1)
    if len(parts) == 2:
        return owner, parts[0], number
    return owner, proj, number


class Job:
    """A job of the platform, seen from a notebook.

    >>> job = floyd.Job(3)           # job 3 of the workspace's project (or "proj/3", "alice/proj/3")
    >>> job.state, job.wait(600), job.logs()[-200:], job.metrics()["loss"][-1]
    >>> job.monitor()                # a live widget: state, time, log tail, metrics, Stop
    """

    def __init__(self, name: str | int, record: dict | None = None, client: FloydClient | None = None) -> None:
        self.owner, self.project, self.number = parse_job_name(name)
        self._client = client
        self.record: dict = record or {}

    @classmethod
    def run(cls, target: str, args: Sequence[str] = (), *, environment: str | None = None, gpus: int | None = None,
            cpus: float | None = None, memory: str | None = None, data: Sequence[str | Mapping[str, Any]] = (),
            params: Mapping[str, Any] | None = None, max_runtime: int | None = None, message: str | None = None,
            cwd: Path | None = None) -> Job:
        """Run ``target`` (a .py script with ``args``, or a .ipynb) of the code directory as a job.

        >>> job = floyd.Job.run("train.py", params={"lr": 0.01}, data=["mnist:3:digits"])

        What is not given comes from the project's floyd.yml, as for ``floyd run`` and ``%floyd_run``."""
        root = code_dir()
        what = script_or_notebook(relative_to_code(target, root, cwd or Path.cwd()), list(args))
        options = JobOptions(environment=environment, gpus=gpus, cpus=cpus, memory=memory, data=data,
                             params=params or {}, max_runtime=max_runtime, message=message)
        record = submit_from_lab(what, options, root=root).result["job"]
        return cls(record["id"], record=record)

    @property
    def name(self) -> str:
        return f"{self.owner}/{self.project}/{self.number}"

    @property
    def client(self) -> FloydClient:
        if self._client is None:
            self._client = make_client()
        return self._client

    @property
    def args(self) -> tuple[str, str, int]:
        return self.owner, self.project, self.number

    def refresh(self) -> dict:
        self.record = self.client.job(*self.args)
        return self.record

    @property
    def state(self) -> str:
        """The current state (asks the platform unless the job already ended)."""
        if self.record.get("state") not in ENDED:
            self.refresh()
        return self.record["state"]

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def logs(self) -> str:
        return self.client.job_log(*self.args)

    def follow(self, out: Callable[[str], None] = print) -> str:
        """Print the log from the first line until the job ends; return the final state."""
        for event, data in self.client.follow_job_log(*self.args):
            if event == "line":
                out(data)
            elif event == "end":
                break
        return self.refresh()["state"]

    def metrics(self) -> dict[str, list[dict]]:
        """``{name: [{"step", "value", "ts"}, …]}``: lines like ``{"metric": "loss", "value": 0.1}``."""
        return self.client.job_metrics(*self.args)["series"]

    def stop(self) -> dict:
        self.record = self.client.stop_job(*self.args)
        return self.record

    def wait(self, timeout: float | None = None, interval: float = 1.0) -> str:
        """Block until the job ends; return its state. ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.refresh()["state"]
            if state in ENDED:
                return state
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Job {self.name} is still {state} after {timeout:g}s.")
            time.sleep(interval if deadline is None else max(0.05, min(interval, deadline - time.monotonic())))

    @property
    def output_dir(self) -> Path | None:
        """Where the job's output is mounted in this workspace (jobs of its own project only)."""
        if os.environ.get("FLOYD_PROJECT") != f"{self.owner}/{self.project}":
            return None
        return job_output_dir(self.number)

    def output_files(self, path: str = "") -> list[dict]:
        return self.client.job_output_files(*self.args, path=path, recursive=True)

    def monitor(self, **kwargs: Any) -> Any:
        """A live ipywidgets monitor (returned; a notebook displays it)."""
        from floyd.lab.widgets import JobMonitor

        return JobMonitor(self, **kwargs)

    def __repr__(self) -> str:
        state = self.record.get("state", "?")
        return f"<floyd.Job {self.name} {state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.args == self.args

    def __hash__(self) -> int:
        return hash(self.args)
