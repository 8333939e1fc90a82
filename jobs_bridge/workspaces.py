"""What a workspace gets: environment, resources, GPUs by device id and the mounts of
DESIGN.md, all checked as the user who asked (the spawner calls this; it never opens the
database or the store itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller, acting_as
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.errors import Unprocessable
from jobs_bridge.executors.contract import CONTAINER_UID, WorkspaceRun, give_to_container_user, workspace_spec
from jobs_bridge.inputs import InputResolver
from jobs_bridge.names import check_name
from jobs_bridge.orm import Dataset, DatasetVersion, Project
from jobs_bridge.projects import ProjectManager
from jobs_bridge.resources.environments import Environment, EnvironmentList, parse_memory
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.resources.limits import Limits
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.storage.trees import TREES
from jobs_bridge.validate import json_bool, positive_number, whole_number


def holder_for(user: str, server_name: str) -> str:
    return f"workspace:{user}/{server_name}"


def check_server_name(value: object) -> str:
    """A named server's name ('' or absent: the default server), a resource name otherwise: it
    becomes part of the GPU holder and of a directory name."""
    if value in (None, ""):
        return ""
    return check_name(value, "server name")


class WorkspaceManager(LoggingConfigurable):
    """Decides each workspace (checked as its user) and hands the spawner a container spec."""

    def __init__(self, *, sessions: sessionmaker[Session], layout: StorageLayout, datasets: DatasetManager,
                 projects: ProjectManager, environments: EnvironmentList, gpus: GpuAllocator, limits: Limits,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.datasets = datasets
        self.projects = projects
        self.environments = environments
        self.gpus = gpus
        self.limits = limits

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
        """The workspace ``body`` asks for, as ``spec`` (a contract RunSpec as JSON) and the
        choices the form shows; GPUs are leased unless it is a ``dry_run``."""
        user = acting_as(caller, body.get("user"))
        dry_run = json_bool(body.get("dry_run", False), "dry_run")
        server_name = check_server_name(body.get("server_name"))
        env = self.environments.get(body["environment"]) if body.get("environment") else self.environments.default()
        gpus, cpus, memory = self._resources(env, body)
        project = self._project(user, body.get("project") or "workspace")
        inputs = self._datasets(user, body.get("datasets") or [])
        holder = holder_for(user.name, server_name)
        if dry_run:
            devices = self.gpus.check_available(holder, gpus)
        else:
            devices = self.gpus.reserve(holder, user.name, gpus) if gpus else []
            if not gpus:
                self.gpus.release(holder)
        run = WorkspaceRun(user=user.name, server_name=server_name, project=project.name, environment=env.name,
                           image=env.image, inputs=[{"path": i["source"], "mount": i["mount"]} for i in inputs],
                           cpus=cpus, memory=memory, gpu_devices=devices, holder=holder)
        spec = workspace_spec(self.layout, run)
        TREES.ready_all(m.source for m in spec.mounts)  # a version committed just now: its tree may be building
        return {
            "user": user.name,
            "holder": holder,
            "environment": env.name,
            "image": env.image,
            "cpus": cpus,
            "memory": memory,
            "gpu_devices": devices,
            "project": f"{user.name}/{project.name}",
            "inputs": inputs,
            "spec": spec.to_json(),
        }

    def _resources(self, env: Environment, body: dict) -> tuple[int, float, int]:
        """(GPUs, CPUs, memory in bytes) asked for, within the environment and the limits."""
        gpus = whole_number(body.get("gpus", 0), "gpus", 0, self.limits.max_gpus)
        if gpus and not env.gpu:
            gpu_envs = [e.name for e in self.environments.items.values() if e.gpu]
            raise Unprocessable(f"Environment {env.name} does not allow GPUs; choose CPU"
                                + (f", or one of: {', '.join(gpu_envs)}." if gpu_envs else "."))
        cpus = positive_number(body.get("cpus", env.cpus), "cpus", self.limits.max_cpus)
        memory = parse_memory(body.get("memory", env.memory))
        if memory > self.limits.max_memory:
            raise Unprocessable(f"{memory} bytes of memory asked for; the most allowed is {self.limits.max_memory}.")
        return gpus, cpus, memory

    def release(self, caller: Caller, body: dict) -> dict:
        user = acting_as(caller, body.get("user"))
        holder = holder_for(user.name, check_server_name(body.get("server_name")))
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
        if path.stat().st_uid != CONTAINER_UID:
            # The workspace runs as the container user: its files on the host belong to that
            # user, and jobs (same image, same user) can read and write them.
            give_to_container_user(path, recursive=True)
        return path

    def _datasets(self, user: Caller, raw: object) -> list[dict]:
        """The form's datasets (or other jobs' outputs), checked as the user, as mounts."""
        with self.sessions() as s:
            resolved = InputResolver(self.layout, self.datasets).resolve(s, user, raw)
        return [{"ref": i.source, "mount": i.mount, "version_id": i.version_id, "source": i.path} for i in resolved]
