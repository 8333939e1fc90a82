"""Projects: a named directory per owner that becomes a workspace's ``/floyd/code``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.auth.rules import check_access
from jobs_bridge.datasets.records import iso
from jobs_bridge.errors import BadRequest, Conflict, NotFound
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import Project
from jobs_bridge.storage.materialize import remove_tree
from jobs_bridge.storage.paths import StorageLayout


def project_json(p: Project) -> dict:
    return {
        "owner": p.owner,
        "name": p.name,
        "full_name": f"{p.owner}/{p.name}",
        "description": p.description,
        "created_at": iso(p.created_at),
    }


class ProjectManager(LoggingConfigurable):
    """Projects of each owner; their files live in StorageLayout.project_dir."""

    def __init__(self, *, sessions: sessionmaker[Session], layout: StorageLayout, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout

    @staticmethod
    def find(s: Session, caller: Caller, owner: str, name: str, *, write: bool = False) -> Project:
        check_owner(owner)
        check_name(name, "project name")
        p = s.scalar(select(Project).where(Project.owner == owner, Project.name == name))
        if p is None:
            raise NotFound(f"Project {owner}/{name} not found.")
        check_access(caller, p.owner, False, f"Project {owner}/{name}", write=write)
        return p

    def create(self, caller: Caller, name: str, description: str = "") -> dict:
        check_name(name, "project name")
        if not isinstance(description, str) or len(description) > 10_000:
            raise BadRequest("'description' must be a string of at most 10,000 characters.")
        with self.sessions.begin() as s:
            if s.scalar(select(Project.id).where(Project.owner == caller.name, Project.name == name)):
                raise Conflict(f"You already have a project named {name}.")
            p = Project(owner=caller.name, name=name, description=description)
            s.add(p)
            s.flush()
            self.layout.project_dir(caller.name, name).mkdir(parents=True, exist_ok=True)
            return project_json(p)

    def list(self, caller: Caller, owner: str | None = None) -> list[dict]:
        with self.sessions() as s:
            q = select(Project).order_by(Project.owner, Project.name)
            if owner is not None:
                check_owner(owner)
                q = q.where(Project.owner == owner)
            if not caller.admin:
                q = q.where(Project.owner == caller.name)
            return [project_json(p) for p in s.scalars(q)]

    def get(self, caller: Caller, owner: str, name: str) -> dict:
        with self.sessions() as s:
            return project_json(self.find(s, caller, owner, name))

    def delete(self, caller: Caller, owner: str, name: str) -> None:
        with self.sessions.begin() as s:
            p = self.find(s, caller, owner, name, write=True)
            s.delete(p)
        remove_tree(self.layout.project_dir(owner, name))
