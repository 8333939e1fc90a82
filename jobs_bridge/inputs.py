"""Inputs of jobs and workspaces: dataset versions and other jobs' outputs, checked as the
user who asked and resolved to the host paths that are mounted read-only."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.errors import BadRequest, NotFound, Unprocessable
from jobs_bridge.names import NAME_MAX, NAME_RE
from jobs_bridge.orm import Job
from jobs_bridge.storage.paths import StorageLayout, clean_relpath, contained
from jobs_bridge.validate import id_number

JOB_OUTPUT_RE = re.compile(r"^(?:(?P<owner>[A-Za-z0-9][A-Za-z0-9._@+-]*)/)?(?P<project>[a-z0-9][a-z0-9._-]*)/(?P<number>-?[0-9]+)(?:/output(?:/(?P<sub>.+))?)?$")


@dataclass
class ResolvedInput:
    source: str
    mount: str
    kind: str  # dataset | job
    path: str  # host path, mounted read-only
    version_id: str = ""

    def record(self) -> dict:
        return {"source": self.source, "mount": self.mount, "kind": self.kind, "version_id": self.version_id or None}


def find_job(s: Session, caller: Caller, owner: str, project: str, number: int | str) -> Job:
    """Every lookup of a job by its name (a path, a parent, an input) comes here: the number is
    checked once, and another user's job is as unknown as a missing one."""
    number = id_number(number, "job number", "use the job's number, e.g. 12.")
    job = s.scalar(select(Job).where(Job.owner == owner, Job.project == project, Job.number == number))
    if job is None or not (caller.admin or caller.name == owner):
        raise NotFound(f"Job {owner}/{project}/{number} not found.")
    return job


class InputResolver:
    def __init__(self, layout: StorageLayout, datasets: DatasetManager) -> None:
        self.layout = layout
        self.datasets = datasets

    def resolve(self, s: Session, caller: Caller, raw: object) -> list[ResolvedInput]:
        """[{'source' (or 'ref'): 'mnist:3' | 'alice/mnist' | 'alice/proj/12/output', 'mount': NAME}] → inputs,
        each checked as ``caller``; mount names default to the dataset's (or 'project-N')."""
        if not isinstance(raw, list):
            raise BadRequest("'inputs' must be a list of {'source': 'mnist:3' or 'alice/proj/12/output', 'mount': 'name'}.")
        out: list[ResolvedInput] = []
        seen: set[str] = set()
        for item in raw:
            if isinstance(item, str):
                item = {"source": item}
            if isinstance(item, dict) and "ref" in item and "source" not in item:
                item = {"source": item["ref"], "mount": item.get("mount")}
            if not isinstance(item, dict) or not isinstance(item.get("source"), str):
                raise BadRequest("Each input must be {'source': ..., 'mount': ...}.")
            source = item["source"].strip()
            m = JOB_OUTPUT_RE.match(source)
            if m:
                o = m.group("owner") or caller.name
                job = find_job(s, caller, o, m.group("project"), m.group("number"))
                default_mount = f"{job.project}-{job.number}"
                resolved = self._job_output(job, m.group("sub"))
            else:
                base, _, version = source.partition(":")
                o, _, name = base.rpartition("/")
                o = o or caller.name
                try:
                    ds = self.datasets.find(s, caller, o, name)
                except NotFound:
                    raise NotFound(f"Dataset {o}/{name} not found (or not shared with you).") from None
                v = self.datasets.find_version(s, ds, version or "latest")
                default_mount = name
                resolved = ResolvedInput(f"{o}/{name}:{v.number}", "", "dataset",
                                         str(self.layout.version_dir(o, name, v.number)), v.version_id)
            mount = item.get("mount") or default_mount
            if not isinstance(mount, str) or len(mount) > NAME_MAX or not NAME_RE.fullmatch(mount):
                raise BadRequest(f"Invalid mount name {mount!r}: one path component of a-z, 0-9, '.', '_', '-' "
                                 "(it becomes /floyd/input/NAME).")
            if mount in seen:
                raise BadRequest(f"Two inputs would be mounted at /floyd/input/{mount}; give one another mount name.")
            seen.add(mount)
            resolved.mount = mount
            out.append(resolved)
        return out

    def _job_output(self, job: Job, sub: str | None) -> ResolvedInput:
        """A job's output, or one folder of it (``…/12/output/clean``, a pipeline step's input),
        which must exist and stay inside the output."""
        output = self.layout.job_output(job.owner, job.project, job.number)
        source = f"{job.owner}/{job.project}/{job.number}/output"
        if not sub:
            return ResolvedInput(source, "", "job", str(output))
        sub = clean_relpath(sub, "output path")
        path = contained(output, sub)
        if not path.is_dir():
            raise Unprocessable(f"The output of job {source.removesuffix('/output')} has no folder {sub!r}.")
        return ResolvedInput(f"{source}/{sub}", "", "job", str(path))
