"""What a workspace gets: environment, resources, GPUs by device id and the mounts of
DESIGN.md, all checked as the user who asked (the spawner calls this; it never opens the
database or the store itself)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.access import Caller
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.errors import BadRequest, Forbidden, Unprocessable
from jobs_bridge.inputs import InputResolver
from jobs_bridge.names import NAME_RE, check_name, check_owner
from jobs_bridge.orm import Dataset, DatasetVersion, Project
from jobs_bridge.projects import ProjectManager
from jobs_bridge.resources.environments import EnvironmentList, parse_memory
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.validate import positive_number, whole_number

WORKSPACE_UID = 1000
WORKSPACE_GID = 100


@dataclass(frozen=True)
class Limits:
    max_cpus: float
    max_memory: int
    max_gpus: int


def holder_for(user: str, server_name: str) -> str:
    return f"workspace:{user}/{server_name}"


class WorkspaceManager:
    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, datasets: DatasetManager,
                 projects: ProjectManager, environments: EnvironmentList, gpus: GpuAllocator, limits: Limits) -> None:
        self.sessions = sessions
        self.layout = layout
        self.datasets = datasets
        self.projects = projects
        self.environments = environments
        self.gpus = gpus
        self.limits = limits

    @staticmethod
    def acting_as(caller: Caller, user: object) -> Caller:
        """Services (the spawner) act for a user; a user may only act as themselves."""
        if user is None:
            return caller
        if not isinstance(user, dict) or not isinstance(user.get("name"), str):
            raise BadRequest("'user' must be {'name': ..., 'admin': ...}.")
        name = check_owner(user["name"])
        if caller.admin:
            return Caller(name=name, admin=bool(user.get("admin", False)))
        if name != caller.name:
            raise Forbidden("You can only prepare your own workspaces.")
        return caller

    def options(self, caller: Caller) -> dict:
        """Everything the spawn form offers this user."""
        with self.sessions() as s:
            projects = [p.name for p in s.scalars(select(Project).where(Project.owner == caller.name).order_by(Project.name))]
            q = (select(Dataset).where(Dataset.kind == "data", (Dataset.owner == caller.name) | Dataset.public.is_(True))
                 .order_by(Dataset.owner, Dataset.name))
            datasets = []
            for ds in s.scalars(q):
                numbers = list(s.scalars(select(DatasetVersion.number).where(DatasetVersion.dataset_id == ds.id)
                                         .order_by(DatasetVersion.number.desc())))
                if numbers:
                    datasets.append({"name": f"{ds.owner}/{ds.name}", "versions": numbers, "public": ds.public})
        free = sum(1 for lease in self.gpus.leases() if lease["holder"] is None)
        return {
            "environments": self.environments.as_json(),
            "projects": projects,
            "datasets": datasets,
            "limits": {"max_cpus": self.limits.max_cpus, "max_memory": self.limits.max_memory,
                       "max_gpus": min(self.limits.max_gpus, len(self.gpus.devices)), "gpus_free": free,
                       "gpus_total": len(self.gpus.devices)},
        }

    def prepare(self, caller: Caller, body: dict) -> dict:
        user = self.acting_as(caller, body.get("user"))
        server_name = body.get("server_name", "") or ""
        if not isinstance(server_name, str) or (server_name and not NAME_RE.match(server_name)):
            raise BadRequest(f"Invalid server name {server_name!r}.")
        env = self.environments.get(body["environment"]) if body.get("environment") else self.environments.default()
        gpus = whole_number(body.get("gpus", 0), "gpus", 0, self.limits.max_gpus)
        if gpus and not env.gpu:
            gpu_envs = [e.name for e in self.environments.items.values() if e.gpu]
            raise Unprocessable(f"Environment {env.name} does not allow GPUs; choose CPU"
                                + (f", or one of: {', '.join(gpu_envs)}." if gpu_envs else "."))
        cpus = positive_number(body.get("cpus", env.cpus), "cpus", self.limits.max_cpus)
        memory = parse_memory(body.get("memory", env.memory))
        if memory > self.limits.max_memory:
            raise Unprocessable(f"{memory} bytes of memory asked for; the most allowed is {self.limits.max_memory}.")
        project = self._project(user, body.get("project") or "workspace")
        mounts = [{"source": str(project), "target": "/floyd/code", "mode": "rw"}]
        jobs_dir = self.layout.root / "jobs" / user.name / project.name
        jobs_dir.mkdir(parents=True, exist_ok=True)
        mounts.append({"source": str(jobs_dir), "target": "/floyd/jobs", "mode": "ro"})
        inputs = self._datasets(user, body.get("datasets") or [])
        mounts += [{"source": i["source"], "target": f"/floyd/input/{i['mount']}", "mode": "ro"} for i in inputs]
        holder = holder_for(user.name, server_name)
        if body.get("dry_run"):
            devices = self.gpus.check_available(holder, gpus)
        else:
            devices = self.gpus.reserve(holder, user.name, gpus) if gpus else []
            if not gpus:
                self.gpus.release(holder)
        return {
            "user": user.name,
            "holder": holder,
            "environment": env.name,
            "image": env.image,
            "cpus": cpus,
            "memory": memory,
            "gpu_devices": devices,
            "project": f"{user.name}/{project.name}",
            "mounts": mounts,
            "inputs": inputs,
            "uid": WORKSPACE_UID,
            "gid": WORKSPACE_GID,
            "env": {
                "FLOYD_PROJECT": f"{user.name}/{project.name}",
                "FLOYD_ENVIRONMENT": env.name,
                "FLOYD_CODE": "/floyd/code",
                "FLOYD_INPUT": "/floyd/input",
                "FLOYD_JOBS": "/floyd/jobs",
            },
        }

    def release(self, caller: Caller, body: dict) -> dict:
        user = self.acting_as(caller, body.get("user"))
        holder = holder_for(user.name, body.get("server_name", "") or "")
        return {"holder": holder, "released": self.gpus.release(holder)}

    # -- checks ----------------------------------------------------------------------
    def _project(self, user: Caller, name: object) -> Path:
        check_name(name, "project name")
        assert isinstance(name, str)
        with self.sessions() as s:
            exists = s.scalar(select(Project.id).where(Project.owner == user.name, Project.name == name))
        if not exists:
            self.projects.create(user, name, "Created for a workspace")
        path = self.layout.project_dir(user.name, name)
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and path.stat().st_uid != WORKSPACE_UID:
            # The workspace runs as uid 1000: its files on the host belong to that uid, and
            # jobs (same image, same uid) can read and write them.
            for dirpath, _dirnames, filenames in os.walk(path):
                os.chown(dirpath, WORKSPACE_UID, WORKSPACE_GID)
                for f in filenames:
                    os.chown(os.path.join(dirpath, f), WORKSPACE_UID, WORKSPACE_GID, follow_symlinks=False)
        return path

    def _datasets(self, user: Caller, raw: object) -> list[dict]:
        """The form's datasets (or other jobs' outputs), checked as the user, as mounts."""
        with self.sessions() as s:
            resolved = InputResolver(self.layout, self.datasets).resolve(s, user, raw)
        return [{"ref": i.source, "mount": i.mount, "version_id": i.version_id, "source": i.path} for i in resolved]
