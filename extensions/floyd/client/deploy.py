"""The one deploy: a project's code as a new version of an HTTP endpoint.

``floyd deploy`` and the Lab's "Deploy as endpoint" both build a :class:`VersionRequest` with
:func:`build_version_request` (floyd.yml's env, resources, input and description, the options
over them) and hand it to :func:`deploy_new_version`, which creates the endpoint when it is missing, uploads
the code with the one code uploader, posts the version and removes an endpoint whose first
version was refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.client.http import FloydClient
from floyd.client.ignore import IgnoreRules
from floyd.client.progress import ProgressObserver
from floyd.client.project_config import ConfigError, check_cpus, check_memory
from floyd.client.request import JobOptions, resolve_settings
from floyd.client.transfer import UploadResult, upload_code

ENTRY_SUFFIXES = (".py", ".ipynb")


@dataclass
class DeployOptions:
    """What the person said (flags, the Lab's form); ``None`` or empty: floyd.yml's value or the bridge's."""

    entry: str | None = None
    task: str | None = None
    environment: str | None = None
    gpus: int | None = None
    cpus: float | None = None
    memory: str | None = None
    replicas: int | None = None
    data: Sequence[str | Mapping[str, Any]] = field(default_factory=tuple)
    health_path: str | None = None
    public: bool = False
    message: str | None = None
    model: str | None = None  # a model version mounted at /floyd/model: iris:3, iris@production
    follow: bool | None = None  # None: follow when model names an alias (docs/models.md)

    def check(self) -> None:
        """What can be refused before anything is uploaded."""
        if self.replicas is not None and self.replicas < 1:
            raise ConfigError(f"--replicas must be a whole number of at least 1, not {self.replicas}.")
        if self.health_path is not None and not self.health_path.startswith("/"):
            raise ConfigError(f"--health-path must be a path such as /health (answering 2xx when ready), "
                              f"not {self.health_path!r}.")
        if self.cpus is not None:
            check_cpus(self.cpus)
        if self.memory is not None:
            check_memory(self.memory)

    def job_options(self) -> JobOptions:
        """The options a version shares with a job (and with floyd.yml's keys)."""
        return JobOptions(environment=self.environment, gpus=self.gpus, cpus=self.cpus, memory=self.memory,
                          data=self.data, message=self.message)


@dataclass
class VersionRequest:
    """The body of ``POST /api/v1/endpoints/{owner}/{name}/versions``; ``None`` fields are left out."""

    project: str
    snapshot: str | None = None
    entry: str | None = None
    environment: str | None = None
    gpus: int | None = None
    cpus: float | None = None
    memory: str | None = None
    inputs: list[dict] | None = None
    message: str | None = None
    replicas: int | None = None
    health_path: str | None = None
    model: str | None = None
    follow: bool | None = None

    def to_body(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def build_version_request(project: str, root: Path | None, opts: DeployOptions) -> VersionRequest:
    """floyd.yml's env, resources, input and description (for ``opts.task``), the options over them."""
    opts.check()
    s = resolve_settings(project, root, opts.job_options(), opts.task)
    return VersionRequest(project=project, entry=opts.entry or None, environment=s.environment, gpus=s.gpus,
                          cpus=s.cpus, memory=s.memory, inputs=s.inputs, message=s.message,
                          replicas=opts.replicas, health_path=opts.health_path or None, model=opts.model or None,
                          follow=opts.follow)


@dataclass
class Deployed:
    version: dict  # the new version, state "deploying"
    endpoint: dict
    created: bool  # the endpoint was made for this version
    upload: UploadResult


def entry_file(entry: str | None) -> str:
    """The file an entry names, by the bridge's rule (``jobs_bridge/serving/spec.py``): none → app.py,
    ``serve.py`` → serve.py, ``pkg.main:api`` → pkg/main.py."""
    if not entry:
        return "app.py"
    if entry.endswith(ENTRY_SUFFIXES):
        return entry
    return entry.partition(":")[0].replace(".", "/") + ".py"


def check_entry_file(root: Path, entry: str | None) -> None:
    """Refuse an entry whose file the snapshot would not hold, before an endpoint is made or a byte sent
    (the bridge checks again, against the snapshot)."""
    rel = entry_file(entry)
    if not (root / rel).is_file():
        if not entry:
            raise ConfigError(f"{root} has no app.py: give the entry, e.g. --entry serve.py, --entry main:api "
                              "or --entry predict.ipynb.")
        raise ConfigError(f"The entry's file {rel} is not in {root}; nothing was deployed. Check the name "
                          "(--entry is relative to the project directory).")
    if not IgnoreRules.for_directory(root).keep(rel):
        raise ConfigError(f"The entry's file {rel} is left out by {root / '.floydignore'}; nothing was deployed.")


def find_endpoint(client: FloydClient, owner: str, name: str) -> dict | None:
    """The endpoint, or None where there is none yet."""
    try:
        return client.get_endpoint(owner, name)
    except FloydAPIError as exc:
        if exc.status == 404:
            return None
        raise


def deploy_new_version(client: FloydClient, owner: str, name: str, request: VersionRequest, root: Path, public: bool = False,
           observer: ProgressObserver | None = None, autoscaling: dict | None = None) -> Deployed:
    """Post ``request`` (code of ``root``) as a new version of endpoint ``owner/name``;
    ``autoscaling`` (the API's object) is set on the endpoint first, so the version starts with it."""
    check_entry_file(root, request.entry)  # before anything is uploaded or created
    existing = find_endpoint(client, owner, name)  # also checks NAME with the bridge before uploading
    project_owner, project = request.project.split("/", 1)
    up = upload_code(client, project_owner, project, root, observer=observer)
    endpoint = existing or client.create_endpoint(name, public, owner)
    if autoscaling:
        endpoint = client.update_endpoint(owner, name, autoscaling=autoscaling)
    try:
        version = client.deploy_version(owner, name, replace(request, snapshot=up.version["id"]).to_body())
    except FloydAPIError:
        if existing is None:  # an endpoint that never had a version is not worth keeping
            try:
                client.delete_endpoint(owner, name)
            except FloydClientError:
                pass
        raise
    if public and not endpoint.get("public"):
        endpoint = client.update_endpoint(owner, name, public=True)
    return Deployed(version, endpoint, existing is None, up)
