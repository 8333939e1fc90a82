"""The container contract: what every Floyd container gets, whatever it is for and whatever runs it.

A job, an endpoint replica and a workspace all see the same ``/floyd`` tree (code, inputs,
output, the project's jobs, the pip cache), run as the same user, and carry the same kind of
``FLOYD_*`` variables and labels. This module is the one place that says so: it builds a
:class:`RunSpec` for each kind, and translates a RunSpec into what each runtime takes (Docker
``containers.create`` options; a directory of links for local processes). The executors, the
replica lifecycle, the workspace manager and the hub's spawners all take it from here, so a
fourth runtime (Swarm) only adds a translation.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jobs_bridge.storage.paths import StorageLayout

# -- the tree inside every container -----------------------------------------------------------
FLOYD = "/floyd"
CODE = "/floyd/code"
INPUT = "/floyd/input"
OUTPUT = "/floyd/output"
JOBS = "/floyd/jobs"
MODEL = "/floyd/model"  # an endpoint's model version (floyd deploy --model), read-only
PIP_CACHE = "/floyd/cache/pip"

# -- who runs inside: the image's jovyan (uid 1000, gid users) -------------------------------------
CONTAINER_UID = 1000
CONTAINER_GID = 100
CONTAINER_USER = f"{CONTAINER_UID}:{CONTAINER_GID}"

# -- what runs inside (modules of the `floyd` package installed in every image) ----------------
JOB_ENTRY = "floyd.container.job_entry"
NOTEBOOK_RUNNER = "floyd.container.notebook_runner"
SERVING = "floyd.container.serving"
# The bridge's MLflow-compatible tracking API, under the platform's URL (docs/tracking.md).
MLFLOW_PATH = "services/floyd/api/v1/mlflow"

# -- labels that let a restarted bridge (or the hub) find its containers -----------------------
INSTANCE_LABEL = "org.floyd.instance"
OWNER_LABEL = "org.floyd.owner"
PROJECT_LABEL = "org.floyd.project"
JOB_LABEL = "org.floyd.job-id"
JOB_NAME_LABEL = "org.floyd.job"
REPLICA_LABEL = "org.floyd.replica"  # "<version id>/<replica index>"
ENDPOINT_LABEL = "org.floyd.endpoint"
WORKSPACE_LABEL = "org.floyd.workspace"
TENSORBOARD_LABEL = "org.floyd.tensorboard"  # the TensorBoard's id
TENSORBOARD = "/floyd/tensorboard"  # a TensorBoard's job outputs, read-only: /floyd/tensorboard/<project>/<n>
ENVIRONMENT_LABEL = "org.floyd.environment"  # a job's environment: where a runtime of many machines places it

KINDS = ("job", "replica", "workspace", "tensorboard")


@dataclass
class Mount:
    source: str  # host path
    target: str  # path inside the container (/floyd/...)
    read_only: bool = True


@dataclass
class RunSpec:
    """One container (or local process) to start: the same shape for every kind and runtime."""

    job_id: int  # the job's id; for a replica its version id; 0 for a workspace
    name: str  # owner/project/number, owner/endpoint/vN/rI/attempt, or user/server
    image: str
    argv: list[str]  # what to run inside, e.g. ["python", "-m", "floyd.container.job_entry", ...]
    env: dict[str, str]
    mounts: list[Mount]
    workdir: str  # host path of this run's directory (jobs/<owner>/<project>/<n>, …/vN/rI)
    cpus: float
    memory: int
    gpu_devices: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    kind: str = "job"  # one of KINDS
    read_only_code: bool = False
    user: str = CONTAINER_USER
    working_dir: str = CODE

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        fields = dict(data)
        fields["mounts"] = [Mount(**m) for m in fields.get("mounts", [])]
        return cls(**fields)

    def mount_table(self) -> dict[str, tuple[str, bool]]:
        """target → (host source, read-only): what every runtime must make visible."""
        return {m.target: (m.source, m.read_only) for m in self.mounts}


# -- ownership: files the container user writes -------------------------------------------------
def give_to_container_user(path: Path, *, recursive: bool = False, file_mode: int | None = None,
                           dir_mode: int | None = None) -> None:
    """Hand ``path`` (and, with ``recursive``, what is below it) to the container user.

    Only root can chown; as anybody else the bridge, the local runtimes and the files already
    belong to one user, which is what the container would be."""
    if dir_mode is not None:
        os.chmod(path, dir_mode)
    if os.geteuid() != 0:
        return
    os.chown(path, CONTAINER_UID, CONTAINER_GID)
    if not recursive:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            os.chown(p, CONTAINER_UID, CONTAINER_GID, follow_symlinks=False)
            if dir_mode is not None and not os.path.islink(p):
                os.chmod(p, dir_mode)
        for f in filenames:
            p = os.path.join(dirpath, f)
            os.chown(p, CONTAINER_UID, CONTAINER_GID, follow_symlinks=False)
            if file_mode is not None and not os.path.islink(p):
                os.chmod(p, file_mode)


def pip_cache_mount(layout: StorageLayout, owner: str, image_id: str) -> Mount:
    """The pip cache rule: per user and image id, created for and owned by the container user."""
    path = layout.pip_cache(owner, image_id)
    path.mkdir(parents=True, exist_ok=True)
    give_to_container_user(path)
    return Mount(str(path), PIP_CACHE, False)


def input_mounts(inputs: Iterable[Mapping[str, Any]]) -> list[Mount]:
    """Resolved inputs ({"path": host path, "mount": name}) at /floyd/input/<name>, read-only."""
    return [Mount(str(i["path"]), f"{INPUT}/{i['mount']}", True) for i in inputs]


def tree_env() -> dict[str, str]:
    """Where the tree is, for code that reads FLOYD_CODE & co. instead of hard-coding /floyd."""
    return {"FLOYD_CODE": CODE, "FLOYD_INPUT": INPUT, "FLOYD_OUTPUT": OUTPUT, "FLOYD_PIP_CACHE": PIP_CACHE}


def wrap_requirements(argv: list[str], requirements: bool) -> list[str]:
    """With a floyd_requirements.txt, install it (cached by hash) before ``argv`` runs."""
    return ["python", "-m", JOB_ENTRY, "--command", shlex.join(argv)] if requirements else argv


# -- the three kinds --------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRun:
    """What the job runner knows of one job when it starts it."""

    job_id: int
    owner: str
    project: str
    number: int
    image: str
    image_id: str
    command: str
    notebook: str
    params: dict[str, str]
    requirements: bool
    inputs: list[dict[str, Any]]
    token: str
    cpus: float
    memory: int
    gpu_devices: list[str]
    environment: str = ""

    @property
    def name(self) -> str:
        return f"{self.owner}/{self.project}/{self.number}"


def job_argv(job: JobRun) -> list[str]:
    params = json.dumps(job.params)
    if job.requirements:  # floyd_requirements.txt: install (cached by hash) first
        argv = ["python", "-m", JOB_ENTRY]
        return argv + (["--notebook", job.notebook, "--params-json", params] if job.notebook
                       else ["--command", job.command])
    if job.notebook:
        return ["python", "-m", NOTEBOOK_RUNNER, job.notebook, "--params-json", params]
    return ["sh", "-c", job.command]  # nothing to set up: run the command as a plain `docker run` would


def job_spec(layout: StorageLayout, job: JobRun, public_url: str) -> RunSpec:
    """A job: its own copy of the code and its output, writable; inputs read-only."""
    code = layout.job_code(job.owner, job.project, job.number)
    output = layout.job_output(job.owner, job.project, job.number)
    mounts = [Mount(str(code), CODE, False), Mount(str(output), OUTPUT, False),
              pip_cache_mount(layout, job.owner, job.image_id), *input_mounts(job.inputs)]
    env = {
        "FLOYD_JOB": job.name, "FLOYD_JOB_TOKEN": job.token, "FLOYD_URL": public_url,
        "FLOYD_PROJECT": f"{job.owner}/{job.project}", **tree_env(), "PYTHONUNBUFFERED": "1",
        **{f"FLOYD_PARAM_{k.upper()}": v for k, v in job.params.items()},
        # The unchanged MLflow client logs to this job's record with the job's own token.
        "MLFLOW_TRACKING_URI": public_url.rstrip("/") + "/" + MLFLOW_PATH, "MLFLOW_TRACKING_TOKEN": job.token,
    }
    return RunSpec(job_id=job.job_id, name=job.name, image=job.image, argv=job_argv(job), env=env, mounts=mounts,
                   workdir=str(layout.job_dir(job.owner, job.project, job.number)), cpus=job.cpus,
                   memory=job.memory, gpu_devices=list(job.gpu_devices),
                   labels={OWNER_LABEL: job.owner, PROJECT_LABEL: f"{job.owner}/{job.project}",
                           **({ENVIRONMENT_LABEL: job.environment} if job.environment else {})})


@dataclass(frozen=True)
class ReplicaRun:
    """What the replica lifecycle knows of one attempt of one endpoint replica."""

    version_id: int
    owner: str
    endpoint: str
    version: int
    index: int
    attempt: int
    project: str
    code_dir: str  # the immutable snapshot, mounted as it is
    image: str
    image_id: str
    entry: str
    listen: str
    port: int
    requirements: bool
    inputs: list[dict[str, Any]]
    health_path: str
    proxy_token: str
    cpus: float
    memory: int
    gpu_devices: list[str]
    model_dir: str = ""  # the model version mounted at /floyd/model; "" for none
    environment: str = ""  # where a runtime of many machines places it (the environment's node labels)

    @property
    def name(self) -> str:
        return f"{self.owner}/{self.endpoint}/v{self.version}/r{self.index}/{self.attempt}"


def replica_spec(layout: StorageLayout, rep: ReplicaRun, public_url: str) -> RunSpec:
    """An endpoint replica: the snapshot read-only (no copy), a scratch output, inputs read-only."""
    scratch = layout.replica_scratch(rep.owner, rep.endpoint, rep.version, rep.index)
    scratch.mkdir(parents=True, exist_ok=True)
    give_to_container_user(scratch)
    mounts = [Mount(rep.code_dir, CODE, True), Mount(str(scratch), OUTPUT, False),
              pip_cache_mount(layout, rep.owner, rep.image_id), *input_mounts(rep.inputs)]
    if rep.model_dir:
        mounts.append(Mount(rep.model_dir, MODEL, True))
    argv = wrap_requirements(["python", "-m", SERVING, "--entry", rep.entry, "--port", str(rep.port),
                              "--host", rep.listen], rep.requirements)
    env = {"FLOYD_ENDPOINT": f"{rep.owner}/{rep.endpoint}", "FLOYD_ENDPOINT_VERSION": str(rep.version),
           "FLOYD_REPLICA": str(rep.index), **tree_env(), "FLOYD_URL": public_url,
           "FLOYD_HEALTH_PATH": rep.health_path, "FLOYD_PROXY_TOKEN": rep.proxy_token, "PYTHONUNBUFFERED": "1",
           "PYTHONDONTWRITEBYTECODE": "1", **({"FLOYD_MODEL": MODEL} if rep.model_dir else {})}
    return RunSpec(job_id=rep.version_id, name=rep.name, image=rep.image, argv=argv, env=env, mounts=mounts,
                   workdir=str(layout.replica_dir(rep.owner, rep.endpoint, rep.version, rep.index)), cpus=rep.cpus, memory=rep.memory, gpu_devices=list(rep.gpu_devices),
                   labels={OWNER_LABEL: rep.owner, **({ENVIRONMENT_LABEL: rep.environment} if rep.environment else {})},
                   kind="replica", read_only_code=True)


@dataclass(frozen=True)
class WorkspaceRun:
    """What the workspace manager decided for one user server."""

    user: str
    server_name: str
    project: str
    environment: str
    image: str
    inputs: list[dict[str, Any]]
    cpus: float
    memory: int
    gpu_devices: list[str]
    holder: str

    @property
    def name(self) -> str:
        return f"{self.user}/{self.server_name or 'default'}"


def workspace_spec(layout: StorageLayout, ws: WorkspaceRun) -> RunSpec:
    """A workspace: the project's files writable at /floyd/code, its jobs read-only at /floyd/jobs.

    ``argv`` stays empty: the spawner runs the single-user server as JupyterHub says."""
    code = layout.project_dir(ws.user, ws.project)
    jobs = layout.project_jobs_dir(ws.user, ws.project)
    jobs.mkdir(parents=True, exist_ok=True)
    mounts = [Mount(str(code), CODE, False), Mount(str(jobs), JOBS, True), *input_mounts(ws.inputs)]
    env = {"FLOYD_PROJECT": f"{ws.user}/{ws.project}", "FLOYD_ENVIRONMENT": ws.environment, "FLOYD_CODE": CODE,
           "FLOYD_INPUT": INPUT, "FLOYD_JOBS": JOBS}
    return RunSpec(job_id=0, name=ws.name, image=ws.image, argv=[], env=env, mounts=mounts,
                   workdir=str(layout.workspace_links(ws.user, ws.server_name)), cpus=ws.cpus, memory=ws.memory,
                   gpu_devices=list(ws.gpu_devices),
                   labels={WORKSPACE_LABEL: ws.holder, PROJECT_LABEL: f"{ws.user}/{ws.project}"},
                   kind="workspace")


# -- translations: what each runtime takes ---------------------------------------------------------
@dataclass(frozen=True)
class TensorBoardRun:
    """What the TensorBoard manager decided for one TensorBoard over some jobs' outputs."""

    owner: str
    tb_id: str
    image: str  # the first job's environment image
    outputs: dict[str, str]  # run label (<project>/<n>) → host path of that job's output
    listen: str
    port: int
    path_prefix: str  # where the bridge proxies it: /services/floyd/tensorboards/<owner>/<id>
    local: bool  # a local process reads the host paths (it has no mounts)


def tensorboard_spec(layout: StorageLayout, tb: TensorBoardRun) -> RunSpec:
    """TensorBoard from the job's image, each output mounted read-only; a scratch directory is its
    working directory and HOME (TensorBoard writes nothing else)."""
    workdir = layout.tensorboard_dir(tb.owner, tb.tb_id)
    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    give_to_container_user(scratch)
    runs = sorted(tb.outputs.items())
    mounts = [Mount(str(scratch), CODE, False), *(Mount(src, f"{TENSORBOARD}/{label}", True) for label, src in runs)]
    logdirs = ",".join(f"{label}:{src if tb.local else f'{TENSORBOARD}/{label}'}" for label, src in runs)
    argv = ["python", "-m", "tensorboard.main", "--logdir_spec", logdirs, "--host", tb.listen, "--port", str(tb.port),
            "--path_prefix", tb.path_prefix, "--reload_interval", "5"]
    return RunSpec(job_id=0, name=f"{tb.owner}/tensorboard/{tb.tb_id}", image=tb.image, argv=argv,
                   env={"HOME": CODE if not tb.local else str(scratch), "PYTHONUNBUFFERED": "1"}, mounts=mounts,
                   workdir=str(workdir), cpus=1, memory=2 << 30,
                   labels={OWNER_LABEL: tb.owner, TENSORBOARD_LABEL: tb.tb_id}, kind="tensorboard")


def identity_labels(spec: RunSpec, instance: str) -> dict[str, str]:
    """The labels a runtime puts on the container so that it is found again."""
    labels = {INSTANCE_LABEL: instance, **spec.labels}
    if spec.kind == "job":
        labels.update({JOB_LABEL: str(spec.job_id), JOB_NAME_LABEL: spec.name})
    elif spec.kind == "replica":
        index = spec.name.split("/")[3].lstrip("r")
        labels.update({REPLICA_LABEL: f"{spec.job_id}/{index}", ENDPOINT_LABEL: spec.name})
    return labels


def docker_volumes(spec: RunSpec) -> dict[str, dict[str, str]]:
    return {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in spec.mounts}


def docker_options(spec: RunSpec, instance: str) -> dict[str, Any]:
    """Keyword arguments of docker-py's ``containers.create`` (the spawner's traits take the same)."""
    from docker.types import DeviceRequest

    options: dict[str, Any] = {
        "environment": dict(spec.env), "volumes": docker_volumes(spec), "working_dir": spec.working_dir,
        "user": spec.user, "labels": identity_labels(spec, instance), "nano_cpus": int(spec.cpus * 1e9),
        "mem_limit": spec.memory,
    }
    if spec.gpu_devices:
        options["device_requests"] = [DeviceRequest(device_ids=list(spec.gpu_devices), capabilities=[["gpu"]])]
    return options


def link_tree(spec: RunSpec, top: Path) -> dict[str, str]:
    """A local process's /floyd: ``top`` gets a link per mount (code/, output/, input/<name>, …).

    Returns target → the path a local process uses for it; a local process has no mount
    namespace, so read-only is not enforced (docs/architecture.md says so)."""
    (top / "input").mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for m in spec.mounts:
        rel = m.target.removeprefix(FLOYD + "/")
        link = top / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(m.source)
        paths[m.target] = str(link)
    return paths


def local_env(spec: RunSpec, paths: Mapping[str, str], top: Path) -> dict[str, str]:
    """``spec.env`` with the tree's variables pointing at the local link tree, and the GPUs."""
    env = dict(spec.env)
    for var, target in (("FLOYD_CODE", CODE), ("FLOYD_OUTPUT", OUTPUT), ("FLOYD_PIP_CACHE", PIP_CACHE),
                        ("FLOYD_JOBS", JOBS), ("FLOYD_MODEL", MODEL)):
        if var in env or target in paths:
            env[var] = paths.get(target, "")
    env["FLOYD_INPUT"] = str(top / "input")
    if spec.gpu_devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpu_devices)
    return env
