"""A deployment request checked and resolved as the user who made it, before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets import layers
from jobs_bridge.errors import BadRequest, NotFound, Unprocessable
from jobs_bridge.inputs import ResolvedInput
from jobs_bridge.jobs.spec import SpecResolver
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import DatasetVersion
from jobs_bridge.projects import ProjectManager
from jobs_bridge.registry.refs import ResolvedModel, resolve_model
from jobs_bridge.resources.environments import Environment, parse_memory
from jobs_bridge.storage.paths import clean_relpath
from jobs_bridge.validate import json_bool, only_keys, positive_number, whole_number

KNOWN_KEYS = {"project", "snapshot", "entry", "environment", "cpus", "memory", "gpus", "replicas", "inputs",
              "health_path", "message", "model", "follow"}
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
ATTR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEALTH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$")


@dataclass
class VersionSpec:
    project: str
    snapshot: str
    snapshot_dir: str
    requirements_hash: str
    entry: str
    env: Environment
    cpus: float
    memory: int
    gpus: int
    replicas: int
    inputs: list[ResolvedInput]
    health_path: str
    message: str
    model: ResolvedModel | None = None  # mounted at /floyd/model
    follow: bool = False  # roll out again whenever model.alias moves


def entry_file(entry: str) -> str:
    """The file an entry names: ``app.py`` → app.py, ``pkg.main:api`` → pkg/main.py."""
    if entry.endswith((".py", ".ipynb")):
        return entry
    module = entry.partition(":")[0]
    return module.replace(".", "/") + ".py"


def check_entry(raw: object, files: set[str]) -> str:
    if raw in (None, ""):
        if "app.py" in files:
            return "app.py"
        raise Unprocessable("The code has no app.py: give the entry, e.g. --entry serve.py, --entry main:api "
                            "or --entry predict.ipynb.")
    if not isinstance(raw, str) or len(raw) > 512:
        raise BadRequest("'entry' must be a file (app.py, model.ipynb) or module:attribute (main:api).")
    if raw.endswith((".py", ".ipynb")):
        entry = clean_relpath(raw, "entry")
    else:
        module, _, attr = raw.partition(":")
        if not MODULE_RE.match(module) or (attr and not ATTR_RE.match(attr)):
            raise BadRequest(f"Invalid entry {raw!r}: use a file (app.py, model.ipynb) or module:attribute "
                             "(main:api).")
        entry = raw
    if entry_file(entry) not in files:
        raise Unprocessable(f"The entry's file {entry_file(entry)!r} is not in the code snapshot.")
    return entry


class VersionResolver(LoggingConfigurable):
    """Shares the job resolver's limits, environments and input rules, so an endpoint can use
    exactly what a job may (and mount a job's output, e.g. the model it trained)."""

    max_replicas = Integer(8, help="Most replicas one endpoint version may have.").tag(config=True)

    def __init__(self, jobs: SpecResolver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs = jobs

    def model(self, s: Session, caller: Caller, body: dict) -> tuple[ResolvedModel | None, bool]:
        """The model to mount, and whether the endpoint follows its alias: following is implied
        when an alias is named (``iris@production``) unless ``follow`` is false."""
        if body.get("model") in (None, ""):
            if body.get("follow"):
                raise BadRequest("'follow' needs a model named by an alias, e.g. 'model': 'iris@production'.")
            return None, False
        model = resolve_model(s, caller, self.jobs.layout, body["model"])
        follow = json_bool(body.get("follow", bool(model.alias)), "follow")
        if follow and not model.alias:
            raise BadRequest(f"Only an alias can be followed: name one, e.g. {model.name}@production, "
                             "or leave 'follow' out to pin this version.")
        return model, follow

    def resolve(self, s: Session, caller: Caller, owner: str, body: dict) -> VersionSpec:
        only_keys(body, KNOWN_KEYS)
        project = body.get("project")
        if not isinstance(project, str) or "/" not in project:
            raise BadRequest("'project' must be OWNER/NAME, e.g. 'alice/iris': the project whose code is served.")
        p_owner, _, pname = project.partition("/")
        if check_owner(p_owner) != owner:
            raise Unprocessable(f"An endpoint of {owner} serves code of {owner}'s projects, not {project}.")
        ProjectManager.find(s, caller, p_owner, check_name(pname, "project name"), write=True)
        snapshot = body.get("snapshot")
        if not isinstance(snapshot, str) or not snapshot.startswith("sha256:"):
            raise BadRequest("'snapshot' must be the id of a code snapshot (sha256:…) uploaded to the project.")
        ds = self.jobs.datasets.code_dataset(s, p_owner, pname)
        v = s.scalar(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id,
                                                  DatasetVersion.version_id == snapshot).limit(1))
        if v is None:
            raise NotFound(f"Project {project} has no code snapshot {snapshot[:19]}…; upload it first.")
        files = layers.file_map(s, layers.of(v))
        entry = check_entry(body.get("entry"), set(files))
        env = self.jobs.environments.get(body["environment"]) if body.get("environment") \
            else self.jobs.environments.default()
        gpus = whole_number(body.get("gpus", 0), "gpus", 0)
        replicas = whole_number(body.get("replicas", 1), "replicas", 1, self.max_replicas)
        if gpus and not env.gpu:
            raise Unprocessable(f"Environment {env.name} does not allow GPUs; choose one that does, or 0 GPUs.")
        if gpus > self.jobs.max_gpus:
            raise Unprocessable(f"At most {self.jobs.max_gpus} GPU(s) per replica.")
        if gpus * replicas > self.jobs.gpu_count:
            raise Unprocessable(f"{gpus} GPU(s) × {replicas} replica(s) asked for, but this platform has "
                                f"{self.jobs.gpu_count}" + (" (no NVIDIA GPU was found)" if not self.jobs.gpu_count
                                                            else "") + ".")
        cpus = positive_number(body.get("cpus", env.cpus), "cpus", self.jobs.max_cpus)
        memory = parse_memory(body.get("memory", env.memory))
        if memory > self.jobs.max_memory:
            raise Unprocessable(f"{memory} bytes of memory asked for; the most allowed is {self.jobs.max_memory}.")
        health = body.get("health_path") or ""
        if health and (not isinstance(health, str) or not HEALTH_RE.match(health) or ".." in health):
            raise BadRequest(f"Invalid health_path {health!r}: a path such as '/health' that answers 2xx when ready.")
        message = body.get("message") or ""
        if not isinstance(message, str) or len(message) > 10_000:
            raise BadRequest("'message' must be a string of at most 10,000 characters.")
        model, follow = self.model(s, caller, body)
        return VersionSpec(
            model=model, follow=follow, project=pname, snapshot=snapshot,
            snapshot_dir=str(self.jobs.layout.version_dir(p_owner, pname, v.number, "code")),
            requirements_hash=files.get("floyd_requirements.txt", ""), entry=entry, env=env, cpus=cpus,
            memory=memory, gpus=gpus, replicas=replicas,
            inputs=self.jobs.inputs.resolve(s, caller, body.get("inputs") or []), health_path=health, message=message,
        )
