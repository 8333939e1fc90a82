"""The one job request of every front end, and the one function that builds it.

``floyd run``, ``%floyd_run``, ``floyd.Job.run`` and the Lab's "Run as job" each turn what the
person said into :class:`JobOptions`; :func:`build_job_request` puts them over the project's
``floyd.yml`` (top level, then ``--task``) and expands short input names, so the same options
give the same :class:`JobRequest` whichever way they came in. ``floyd deploy`` and the Lab's
"Deploy as endpoint" take their floyd.yml defaults through :func:`resolve_settings` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floyd.client.project_config import (
    ConfigError,
    JobSettings,
    check_cpus,
    check_memory,
    load_settings,
    merge,
    param_value,
    parse_input,
)


class NothingToRun(ConfigError):
    """Neither the front end nor floyd.yml's ``command:`` says what the job runs."""


def expand_source(text: str, project: str) -> str:
    """``12/output`` (job 12 of ``project``) and FloydHub's long names (``alice/projects/p/12/output``,
    ``alice/datasets/mnist/3``) as the bridge reads them; anything else is left to the bridge."""
    parts = text.strip().strip("/").split("/")
    if len(parts) == 2 and parts[0].isdigit() and parts[1] == "output":
        return f"{project}/{parts[0]}/output"
    if len(parts) >= 4 and parts[1] == "projects":
        return "/".join([parts[0], *parts[2:4]]) + "/output"
    if len(parts) in (3, 4) and parts[1] == "datasets":
        return f"{parts[0]}/{parts[2]}" + (f":{parts[3]}" if len(parts) == 4 else "")
    return text.strip()


def parse_inputs(items: Sequence[str | Mapping[str, Any]]) -> list[dict]:
    """``["mnist:3:digits", {"source": "12/output", "mount": "m"}]`` → the bridge's ``inputs``
    (``destination`` is floyd.yml's word for ``mount``)."""
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(parse_input(item))
        elif isinstance(item, Mapping) and isinstance(item.get("source"), str):
            entry = {"source": item["source"].strip()}
            mount = item.get("mount") or item.get("destination")
            if mount:
                entry["mount"] = str(mount)
            out.append(entry)
        else:
            raise ConfigError(f"Cannot read dataset {item!r}: use SRC[:MOUNT], e.g. mnist:3:digits.")
    return out


@dataclass
class JobOptions:
    """What the person said in a front end (flags, magic options, the Lab's form, ``Job.run``'s
    arguments); ``None`` or empty means "not said", so floyd.yml's value applies."""

    environment: str | None = None
    gpus: int | None = None
    cpus: float | None = None
    memory: str | None = None
    data: Sequence[str | Mapping[str, Any]] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    max_runtime: int | None = None
    message: str | None = None
    sweep: dict | None = None
    concurrency: int | None = None
    retries: int | None = None  # runs again after a lost run (not after a failed exit), at most this often

    def settings(self) -> JobSettings:
        """The options checked, in floyd.yml's shape (parameters as strings)."""
        out = JobSettings(environment=self.environment or None, gpus=self.gpus, max_runtime=self.max_runtime,
                          message=self.message or None, sweep=self.sweep, concurrency=self.concurrency,
                          retries=self.retries)
        if self.cpus is not None:
            out.cpus = check_cpus(self.cpus)
        if self.memory is not None:
            out.memory = check_memory(self.memory)
        out.inputs = parse_inputs(self.data) or None
        out.params = {str(k): param_value(v) for k, v in self.params.items()}
        return out


def resolve_settings(project: str, root: Path | None, options: JobOptions, task: str | None = None) -> JobSettings:
    """floyd.yml of ``root`` (none when ``root`` is None), ``task``'s keys over it, the options over
    both; inputs' short names expanded for ``project``."""
    settings = merge(load_settings(root, task), options.settings())
    if settings.inputs:
        settings.inputs = [{**i, "source": expand_source(i["source"], project)} for i in settings.inputs]
    return settings


@dataclass
class JobRequest:
    """The body of ``POST /api/v1/jobs``: what runs, on which project and code snapshot, with
    the :class:`JobSettings` that floyd.yml and the front end's options resolved to (their
    unset fields are left out of the body: the bridge's defaults)."""

    project: str
    settings: JobSettings
    snapshot: str | None = None  # the code snapshot's id, known once the code is uploaded
    command: str | None = None
    notebook: str | None = None

    def to_body(self) -> dict[str, Any]:
        what = {"project": self.project, "snapshot": self.snapshot, "command": self.command,
                "notebook": self.notebook}
        return {**{k: v for k, v in what.items() if v is not None}, **self.settings.request()}


def default_what(command: str) -> dict[str, str]:
    """floyd.yml's ``command:``; a lone ``NAME.ipynb`` (relative to the project) is a notebook."""
    text = command.strip()
    if text.endswith(".ipynb") and " " not in text:
        return {"notebook": text}
    return {"command": text}


def build_job_request(project: str, what: Mapping[str, str], options: JobOptions, root: Path | None,
                      task: str | None = None) -> JobRequest:
    """THE way a job request is made: ``what`` (``{"command"}`` or ``{"notebook"}``, or empty for
    floyd.yml's ``command:``) with ``options`` over floyd.yml of ``root``."""
    settings = resolve_settings(project, root, options, task)
    chosen = dict(what) or (default_what(settings.command) if settings.command else {})
    if not chosen:
        raise NothingToRun('What should the job run? floyd run "python train.py" (or set command: in floyd.yml).')
    return JobRequest(project=project, settings=settings, command=chosen.get("command"),
                      notebook=chosen.get("notebook"))
