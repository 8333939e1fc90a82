"""A job request checked and resolved as the user who made it, before anything runs.

Bad specs (unknown environment, more GPUs than exist, a dataset that is not yours, a mount
name with '/' or '..', negative limits) are 4xx errors that name the problem.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets import layers
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.errors import BadRequest, NotFound, Unprocessable
from jobs_bridge.inputs import JOB_OUTPUT_RE, InputResolver, ResolvedInput, find_job
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import DatasetVersion
from jobs_bridge.projects import ProjectManager
from jobs_bridge.resources.environments import Environment, EnvironmentList, parse_memory
from jobs_bridge.storage.paths import StorageLayout, clean_relpath
from jobs_bridge.validate import only_keys, positive_number, whole_number

PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
KNOWN_KEYS = {"project", "snapshot", "command", "notebook", "environment", "gpus", "cpus", "memory", "inputs",
              "params", "max_runtime", "message", "task", "parent", "sweep", "concurrency",
              "retries"}


@dataclass
class JobSpec:
    owner: str
    project: str
    snapshot: str
    snapshot_dir: str
    requirements_hash: str
    command: str
    notebook: str
    env: Environment
    cpus: float
    memory: int
    gpus: int
    inputs: list[ResolvedInput]
    params: dict[str, str]
    max_runtime: int
    message: str
    task: str
    parent_id: int | None
    sweep: list[dict[str, str]] = field(default_factory=list)
    concurrency: int = 0
    retries: int = 0  # runs again after a lost run, at most this often (jobs/retries.py)


def _params(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("'params' must be an object of name → value.")
    out = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not PARAM_RE.match(k):
            raise BadRequest(f"Invalid parameter name {k!r}: use a Python identifier such as 'lr' or 'num_layers'.")
        if isinstance(v, (dict, list)):
            raise BadRequest(f"Parameter {k!r} must be a single value, not {type(v).__name__}.")
        out[k] = v if isinstance(v, str) else json.dumps(v)
    return out


def expand_sweep(raw: object, max_jobs: int) -> list[dict[str, str]]:
    """{'grid': {'lr': [0.1, 0.01]}} or {'random': {'count': 4, 'seed': 1, 'params': {...}}} → param sets."""
    if raw is None:
        return []
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("grid", "random"):
        raise BadRequest("'sweep' must be {'grid': {name: [values]}} or {'random': {'count': N, 'params': {...}}}.")
    kind, body = next(iter(raw.items()))
    space = body if kind == "grid" else (body or {}).get("params")
    if not isinstance(space, dict) or not space:
        raise BadRequest(f"The {kind} sweep needs at least one parameter with a list of values.")
    for name, values in space.items():
        if not isinstance(name, str) or not PARAM_RE.match(name):
            raise BadRequest(f"Invalid sweep parameter name {name!r}.")
        if not isinstance(values, list) or not values:
            raise BadRequest(f"Sweep parameter {name!r} needs a non-empty list of values.")
    names = list(space)
    if kind == "grid":
        combos = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(space[n] for n in names))]
    else:
        count = whole_number(body.get("count", 0), "sweep count", 1, max_jobs)
        rng = random.Random(body.get("seed"))
        combos = [{n: rng.choice(space[n]) for n in names} for _ in range(count)]
    if len(combos) > max_jobs:
        raise Unprocessable(f"The sweep makes {len(combos)} jobs; at most {max_jobs} are allowed at once.")
    return [{k: v if isinstance(v, str) else json.dumps(v) for k, v in c.items()} for c in combos]


class SpecResolver(LoggingConfigurable):
    """Checks a job request as its caller; the endpoint resolver shares its limits and input rules."""

    max_sweep_jobs = Integer(
        200, help="Most jobs one sweep may create (default 200); a bigger sweep is refused with 422.",
    ).tag(config=True)
    max_retries = Integer(
        10, help="Most times a job may ask to be run again after a lost run ('retries', floyd run --retries N; "
        "default 10); more is refused with 422.",
    ).tag(config=True)

    def __init__(self, layout: StorageLayout, datasets: DatasetManager, environments: EnvironmentList,
                 max_cpus: float, max_memory: int, max_gpus: int, gpu_count: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.layout = layout
        self.datasets = datasets
        self.environments = environments
        self.max_cpus = max_cpus
        self.max_memory = max_memory
        self.max_gpus = max_gpus
        self.gpu_count = gpu_count
        self.inputs = InputResolver(layout, datasets)

    def resolve(self, s: Session, caller: Caller, body: dict) -> JobSpec:
        only_keys(body, KNOWN_KEYS)
        project = body.get("project")
        if not isinstance(project, str) or "/" not in project:
            raise BadRequest("'project' must be OWNER/NAME, e.g. 'alice/mnist-cnn'.")
        owner, _, pname = project.partition("/")
        ProjectManager.find(s, caller, check_owner(owner), check_name(pname, "project name"), write=True)
        command, notebook = body.get("command") or "", body.get("notebook") or ""
        if bool(command) == bool(notebook):
            raise BadRequest("Give either 'command' (e.g. 'python train.py') or 'notebook' (e.g. 'train.ipynb').")
        if not isinstance(command, str) or len(command) > 10_000:
            raise BadRequest("'command' must be a string of at most 10,000 characters.")
        if notebook:
            notebook = clean_relpath(notebook, "notebook path")
            if not notebook.endswith(".ipynb"):
                raise BadRequest(f"{notebook!r} is not a notebook (.ipynb).")
        snapshot_dir, req_hash = self._snapshot(s, caller, owner, pname, body.get("snapshot"), notebook)
        env = self.environments.get(body["environment"]) if body.get("environment") else self.environments.default()
        gpus = whole_number(body.get("gpus", 0), "gpus", 0)
        if gpus > self.gpu_count:
            raise Unprocessable(f"{gpus} GPU(s) asked for, but this platform has {self.gpu_count}"
                                + (" (no NVIDIA GPU was found; run on CPU)" if not self.gpu_count else "") + ".")
        if gpus > self.max_gpus:
            raise Unprocessable(f"At most {self.max_gpus} GPU(s) per job.")
        if gpus and not env.gpu:
            raise Unprocessable(f"Environment {env.name} does not allow GPUs; choose one that does, or --cpu.")
        cpus = positive_number(body.get("cpus", env.cpus), "cpus", self.max_cpus)
        memory = parse_memory(body.get("memory", env.memory))
        if memory > self.max_memory:
            raise Unprocessable(f"{memory} bytes of memory asked for; the most allowed is {self.max_memory}.")
        max_runtime = whole_number(body.get("max_runtime", 0), "max_runtime", 0)
        message = body.get("message") or ""
        task = body.get("task") or ""
        if not isinstance(message, str) or not isinstance(task, str) or len(message) > 10_000 or len(task) > 64:
            raise BadRequest("'message' and 'task' must be strings (task at most 64 characters).")
        parent_id = self._parent(s, caller, body.get("parent"))
        sweep = expand_sweep(body.get("sweep"), self.max_sweep_jobs)
        concurrency = whole_number(body.get("concurrency", 0), "concurrency", 0)
        retries = whole_number(body.get("retries", 0), "retries", 0, self.max_retries)
        return JobSpec(
            owner=owner, project=pname, snapshot=body["snapshot"], snapshot_dir=snapshot_dir,
            requirements_hash=req_hash, command=command, notebook=notebook, env=env, cpus=cpus, memory=memory,
            gpus=gpus, inputs=self.inputs.resolve(s, caller, body.get("inputs") or []), params=_params(body.get("params")),
            max_runtime=max_runtime, message=message, task=task, parent_id=parent_id, sweep=sweep,
            concurrency=concurrency, retries=retries,
        )

    def _snapshot(self, s: Session, caller: Caller, owner: str, project: str, snapshot: object,
                  notebook: str) -> tuple[str, str]:
        if not isinstance(snapshot, str) or not snapshot.startswith("sha256:"):
            raise BadRequest("'snapshot' must be the id of a code snapshot (sha256:…) uploaded to the project.")
        ds = self.datasets.code_dataset(s, owner, project)
        v = s.scalar(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id,
                                                  DatasetVersion.version_id == snapshot).limit(1))
        if v is None:
            raise NotFound(f"Project {owner}/{project} has no code snapshot {snapshot[:19]}…; upload it first.")
        files = layers.file_map(s, layers.of(v))
        if notebook and notebook not in files:
            raise Unprocessable(f"The notebook {notebook!r} is not in the code snapshot.")
        return str(self.layout.version_dir(owner, project, v.number, "code")), files.get("floyd_requirements.txt", "")

    def _parent(self, s: Session, caller: Caller, parent: object) -> int | None:
        if parent in (None, ""):
            return None
        m = JOB_OUTPUT_RE.match(str(parent))
        if not m:
            raise BadRequest(f"Invalid parent job {parent!r}: use OWNER/PROJECT/NUMBER.")
        return find_job(s, caller, m.group("owner") or caller.name, m.group("project"), m.group("number")).id
