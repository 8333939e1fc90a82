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
from jobs_bridge.errors import BadRequest, Forbidden, NotFound, Unprocessable
from jobs_bridge.names import NAME_RE, check_name, check_owner
from jobs_bridge.orm import Dataset, DatasetVersion, Project
from jobs_bridge.projects import ProjectManager
from jobs_bridge.resources.environments import EnvironmentList, parse_memory
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.storage.paths import StorageLayout

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
        gpus = self._int(body.get("gpus", 0), "gpus", 0, self.limits.max_gpus)
        if gpus and not env.gpu:
            gpu_envs = [e.name for e in self.environments.items.values() if e.gpu]
            raise Unprocessable(f"Environment {env.name} does not allow GPUs; choose CPU"
                                + (f", or one of: {', '.join(gpu_envs)}." if gpu_envs else "."))
        cpus = self._float(body.get("cpus", env.cpus), "cpus", self.limits.max_cpus)
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
    @staticmethod
    def _int(value: object, what: str, low: int, high: int) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise Unprocessable(f"'{what}' must be a whole number from {low} to {high}.")
        return value

    @staticmethod
    def _float(value: object, what: str, high: float) -> float:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise Unprocessable(f"'{what}' must be a number.") from None
        if not 0 < number <= high:
            raise Unprocessable(f"'{what}' must be more than 0 and at most {high:g}.")
        return number

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
        if not isinstance(raw, list):
            raise BadRequest("'datasets' must be a list of {'ref': 'owner/name:version', 'mount': 'name'}.")
        out: list[dict] = []
        seen: set[str] = set()
        for item in raw:
            if isinstance(item, str):
                item = {"ref": item}
            if not isinstance(item, dict) or not isinstance(item.get("ref"), str):
                raise BadRequest("Each dataset must be {'ref': 'owner/name:version', 'mount': 'name'}.")
            ref = item["ref"]
            base, _, version = ref.partition(":")
            owner, _, name = base.rpartition("/")
            owner = owner or user.name
            mount = item.get("mount") or name
            if not isinstance(mount, str) or not NAME_RE.match(mount) or ".." in mount:
                raise BadRequest(f"Invalid mount name {mount!r}: one path component of a-z, 0-9, '.', '_', '-'.")
            if mount in seen:
                raise BadRequest(f"Two datasets would be mounted at /floyd/input/{mount}; give one another mount name.")
            seen.add(mount)
            with self.sessions() as s:
                try:
                    ds = self.datasets.find(s, user, owner, name)
                except NotFound:
                    raise NotFound(f"Dataset {owner}/{name} not found (or not shared with {user.name}).") from None
                v = self.datasets.find_version(s, ds, version or "latest")
                out.append({"ref": f"{owner}/{name}:{v.number}", "mount": mount, "version_id": v.version_id,
                            "source": str(self.layout.version_dir(owner, name, v.number))})
        return out
