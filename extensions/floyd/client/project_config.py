"""A project directory: ``.floydexpt`` (which project it is) and ``floyd.yml`` (how its jobs run).

``floyd.yml`` takes FloydHub's keys. The top level holds defaults; ``task: {NAME: {...}}`` holds
named variants that ``floyd run --task NAME`` picks over the top level; command-line flags win
over both::

    env: cpu                     # an environment name (floyd run --env)
    machine: gpu                 # cpu | gpu | gpu2  ->  0, 1 or 2 GPUs
    resources: {cpus: 2, memory: 4G}
    input:
      - mnist:3:digits           # SRC[:MOUNT]; or {source: mnist:3, destination: digits}
    command: python train.py
    max_runtime: 3600
    retries: 2                   # run again when the run is lost (its machine went away)
    description: baseline        # becomes the job's message
    params: {lr: 0.01}
    sweep: {grid: {lr: [0.1, 0.01]}}
    concurrency: 2
    task:
      evaluate: {command: python eval.py, machine: cpu}

Everything here is pure (text in, settings out) so it is unit-testable without a platform.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from floyd.client.errors import FloydClientError

EXPT_FILE = ".floydexpt"
YML_FILE = "floyd.yml"

TASK_KEYS = ("command", "concurrency", "description", "env", "input", "machine", "max_runtime", "params",
             "resources", "retries", "sweep")
TOP_KEYS = tuple(sorted((*TASK_KEYS, "task", "pipelines")))  # pipelines: client/pipelines.py
MACHINES = {"cpu": 0, "gpu": 1, "gpu2": 2}
RESOURCE_KEYS = ("cpus", "gpus", "memory")
PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MEMORY_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$", re.IGNORECASE)  # as the bridge reads it
VERSION_RE = re.compile(r"^(\d+|latest)$")

EXAMPLE_FLOYD_YML = """\
# floyd.yml: defaults for `floyd run` in this project. Command-line flags win over these;
# `floyd run --task NAME` uses a task's keys over the top level. Uncomment what you need.
#
# env: cpu                      # environment (see the platform's environment list)
# machine: cpu                  # cpu | gpu | gpu2
# resources:
#   cpus: 2
#   memory: 4G
# input:                        # datasets or job outputs, mounted read-only under /floyd/input
#   - mnist:3:digits            # SRC[:MOUNT]; or {source: mnist:3, destination: digits}
#   - 12/output:previous        # the output of this project's job 12
# command: python train.py
# max_runtime: 3600             # seconds; 0 = no limit
# retries: 2                    # run again if lost (node gone, engine restarted), never on a failed exit
# description: what this run tries
# params:                       # FLOYD_PARAM_LR=0.01 in the job's environment
#   lr: 0.01
# sweep:                        # one job per combination, as a group
#   grid:
#     lr: [0.1, 0.01]
# concurrency: 2                # most jobs of a sweep running at once
#
# task:
#   evaluate:
#     command: python evaluate.py
#     machine: cpu
"""


class ConfigError(FloydClientError):
    """A bad floyd.yml or flag value; the message names the key and what is allowed."""


@dataclass
class JobSettings:
    """What a job request gets from floyd.yml (and then from flags): None = not set."""

    command: str | None = None
    environment: str | None = None
    gpus: int | None = None
    cpus: float | None = None
    memory: str | None = None
    inputs: list[dict] | None = None
    params: dict[str, str] = field(default_factory=dict)
    max_runtime: int | None = None
    message: str | None = None
    sweep: dict | None = None
    concurrency: int | None = None
    retries: int | None = None
    task: str | None = None

    def request(self) -> dict:
        """The fields of a job request's body that are set (``command`` is floyd.yml's default of
        what to run, not a request field: the request names what it runs itself)."""
        body = {k: v for k, v in vars(self).items() if v is not None and k not in ("command", "params")}
        if self.params:
            body["params"] = dict(self.params)
        return body


# -- .floydexpt -----------------------------------------------------------------------------
def find_project_dir(start: Path) -> tuple[Path, str] | None:
    """The nearest directory at or above ``start`` with a ``.floydexpt``, and its project."""
    start = start.resolve()
    for d in [start, *start.parents]:
        f = d / EXPT_FILE
        if f.is_file():
            try:
                project = json.loads(f.read_text())["project"]
            except (OSError, ValueError, KeyError, TypeError):
                raise FloydClientError(f"{f} is damaged; run `floyd init PROJECT` there again.") from None
            if not isinstance(project, str) or project.count("/") != 1:
                raise FloydClientError(f"{f} names no OWNER/PROJECT; run `floyd init PROJECT` there again.")
            return d, project
    return None


def write_expt(directory: Path, project: str) -> Path:
    f = directory / EXPT_FILE
    f.write_text(json.dumps({"project": project}) + "\n")
    return f


# -- values ---------------------------------------------------------------------------------
def _where(task: str | None) -> str:
    return f"floyd.yml: task '{task}':" if task else "floyd.yml:"


def _str(value: object, key: str, task: str | None) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value).strip() == "":
        raise ConfigError(f"{_where(task)} {key} must be a non-empty string, not {value!r}")
    return str(value)


def _int(value: object, key: str, task: str | None, low: int = 0) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{_where(task)} {key} must be a whole number of at least {low}, not {value!r}")
    return value


def param_value(value: object) -> str:
    """Parameters travel as strings; YAML numbers and booleans as JSON would write them."""
    return value if isinstance(value, str) else json.dumps(value)


def check_memory(value: object, label: str = "--memory") -> str:
    """A memory size as the bridge reads it (``512M``, ``4G``, ``4GiB`` or bytes)."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not MEMORY_RE.match(text):
        raise ConfigError(f"{label} must be a size such as 512M, 4G or 4GiB, not {value!r}")
    return text


def check_cpus(value: object, label: str = "--cpus") -> float:
    try:
        if not isinstance(value, (int, float, str)):
            raise TypeError(value)
        cpus = float(value)
    except (TypeError, ValueError):
        cpus = -1.0
    if isinstance(value, bool) or not cpus > 0:
        raise ConfigError(f"{label} must be a number of CPUs above 0 (e.g. 0.5 or 2), not {value!r}")
    return cpus


def parse_input(text: str) -> dict:
    """``SRC[:MOUNT]`` → {source, mount?}. SRC is ``mnist``, ``mnist:3``, ``alice/mnist:3`` or a job
    output ``12/output``, ``mnist-cnn/12/output``, ``alice/mnist-cnn/12/output``. A last ``:NAME``
    is a mount unless NAME is a version (a number or ``latest``) of a dataset without one."""
    text = text.strip()
    if not text:
        raise ConfigError("An input needs a source, e.g. mnist:3 or 12/output (SRC[:MOUNT]).")
    head, sep, last = text.rpartition(":")
    if sep and head and last and "/" not in last and (":" in head or not VERSION_RE.match(last)):
        return {"source": head, "mount": last}
    return {"source": text}


def _inputs(value: object, task: str | None) -> list[dict]:
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{_where(task)} input must be a list of 'SRC:MOUNT' strings or "
                          "{source, destination} mappings")
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(parse_input(item))
        elif isinstance(item, dict):
            unknown = set(item) - {"source", "destination"}
            if unknown or not isinstance(item.get("source"), str):
                raise ConfigError(f"{_where(task)} each input mapping needs 'source' and may have "
                                  f"'destination' (not {', '.join(sorted(map(str, unknown))) or 'nothing'})")
            entry = {"source": item["source"].strip()}
            if item.get("destination"):
                entry["mount"] = _str(item["destination"], "input destination", task)
            out.append(entry)
        else:
            raise ConfigError(f"{_where(task)} input entries must be 'SRC:MOUNT' or {{source, destination}}, "
                              f"not {item!r}")
    return out


def _params(value: object, task: str | None) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{_where(task)} params must be a mapping of name: value")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not PARAM_RE.match(k):
            raise ConfigError(f"{_where(task)} params: {k!r} is not a valid parameter name (use e.g. lr, num_layers)")
        if v is None or isinstance(v, (dict, list)):
            raise ConfigError(f"{_where(task)} params: {k} must be a single value, not {v!r}")
        out[k] = param_value(v)
    return out


def check_sweep(value: object, where: str = "floyd.yml:") -> dict:
    """{grid: {name: [values]}} or {random: {count, seed?, params: {name: [values]}}}."""
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("grid", "random"):
        raise ConfigError(f"{where} sweep must be {{grid: {{name: [values]}}}} or "
                          "{random: {count: N, params: {name: [values]}}}")
    kind, body = next(iter(value.items()))
    if kind == "random":
        if not isinstance(body, dict) or set(body) - {"count", "seed", "params"}:
            raise ConfigError(f"{where} sweep random takes count, seed and params")
        if isinstance(body.get("count"), bool) or not isinstance(body.get("count"), int) or body["count"] < 1:
            raise ConfigError(f"{where} sweep random count must be a whole number of at least 1, "
                              f"not {body.get('count')!r}")
        space = body.get("params")
    else:
        space = body
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where} the {kind} sweep needs at least one parameter with a list of values")
    for name, values in space.items():
        if not isinstance(name, str) or not PARAM_RE.match(name):
            raise ConfigError(f"{where} sweep: {name!r} is not a valid parameter name")
        if not isinstance(values, list) or not values or any(isinstance(v, (dict, list)) or v is None
                                                              for v in values):
            raise ConfigError(f"{where} sweep: {name} needs a non-empty list of values, not {values!r}")
    return value


def parse_sweep_flag(text: str) -> dict:
    """``'lr=0.1,0.01 layers=2,3'`` → {grid: {lr: ['0.1', '0.01'], layers: ['2', '3']}}."""
    grid: dict[str, list[str]] = {}
    for part in text.replace(";", " ").split():
        name, eq, values = part.partition("=")
        if not eq or not PARAM_RE.match(name) or not values:
            raise ConfigError(f"--sweep: cannot read {part!r}; write NAME=V1,V2 pairs, e.g. --sweep 'lr=0.1,0.01 layers=2,3'")
        if name in grid:
            raise ConfigError(f"--sweep: {name} is given twice")
        grid[name] = [v for v in values.split(",") if v != ""]
    if not grid:
        raise ConfigError("--sweep needs NAME=V1,V2 pairs, e.g. --sweep 'lr=0.1,0.01 layers=2,3'")
    return {"grid": grid}


def parse_param_flags(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not PARAM_RE.match(name):
            raise ConfigError(f"--param: cannot read {item!r}; write NAME=VALUE, e.g. --param lr=0.01")
        out[name] = value
    return out


# -- floyd.yml ------------------------------------------------------------------------------
def _section(data: dict, task: str | None) -> JobSettings:
    allowed = TASK_KEYS if task else TOP_KEYS
    for key in data:
        if key not in allowed:
            inside = f" in task '{task}'" if task else ""
            raise ConfigError(f"floyd.yml: unknown key {key!r}{inside} (allowed: {', '.join(allowed)})")
    out = JobSettings()
    if data.get("command") is not None:
        out.command = _str(data["command"], "command", task)
    if data.get("env") is not None:
        out.environment = _str(data["env"], "env", task)
    if data.get("machine") is not None:
        machine = data["machine"]
        if not isinstance(machine, str) or machine not in MACHINES:
            raise ConfigError(f"{_where(task)} machine must be cpu, gpu or gpu2, not {machine!r}")
        out.gpus = MACHINES[machine]
    if data.get("resources") is not None:
        res = data["resources"]
        if not isinstance(res, dict):
            raise ConfigError(f"{_where(task)} resources must be a mapping with {', '.join(RESOURCE_KEYS)}")
        for key in res:
            if key not in RESOURCE_KEYS:
                raise ConfigError(f"{_where(task)} unknown key {key!r} in resources "
                                  f"(allowed: {', '.join(RESOURCE_KEYS)})")
        if res.get("cpus") is not None:
            out.cpus = check_cpus(res["cpus"], f"{_where(task)} resources.cpus")
        if res.get("memory") is not None:
            out.memory = check_memory(res["memory"], f"{_where(task)} resources.memory")
        if res.get("gpus") is not None:
            gpus = _int(res["gpus"], "resources.gpus", task)
            if out.gpus is not None and out.gpus != gpus:
                raise ConfigError(f"{_where(task)} machine {data['machine']!r} means {out.gpus} GPU(s) but "
                                  f"resources.gpus is {gpus}; give one of them")
            out.gpus = gpus
    if data.get("input") is not None:
        out.inputs = _inputs(data["input"], task)
    if data.get("max_runtime") is not None:
        out.max_runtime = _int(data["max_runtime"], "max_runtime", task)
    if data.get("description") is not None:
        out.message = str(data["description"])
    if data.get("params") is not None:
        out.params = _params(data["params"], task)
    if data.get("sweep") is not None:
        out.sweep = check_sweep(data["sweep"], _where(task))
    if data.get("concurrency") is not None:
        out.concurrency = _int(data["concurrency"], "concurrency", task)
    if data.get("retries") is not None:
        out.retries = _int(data["retries"], "retries", task)
    return out


def load_yaml(text: str) -> dict:
    import yaml  # here, not at the top: commands that only find the linked project skip its import

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"floyd.yml is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("floyd.yml must be a mapping of keys (command, env, machine, ...), "
                          f"not a {type(data).__name__}")
    return data


def settings_from_yaml(text: str, task: str | None = None) -> JobSettings:
    """The job settings of floyd.yml's top level, with task ``task``'s keys over them.

    Every key is checked (also in tasks not chosen), so a typo is reported on the first run.
    """
    data = load_yaml(text)
    top = _section(data, None)
    tasks = data.get("task") or {}
    if not isinstance(tasks, dict):
        raise ConfigError("floyd.yml: task must be a mapping of task name: {keys}")
    sections = {}
    for name, body in tasks.items():
        if not isinstance(body, dict):
            raise ConfigError(f"floyd.yml: task {name!r} must be a mapping of keys ({', '.join(TASK_KEYS)})")
        sections[str(name)] = _section(body, str(name))
    if task is None:
        return top
    if task not in sections:
        known = ", ".join(sorted(sections)) or "none defined"
        raise ConfigError(f"floyd.yml has no task {task!r} (tasks: {known})")
    return merge(top, sections[task], task)


def merge(base: JobSettings, over: JobSettings, task: str | None = None) -> JobSettings:
    """``over``'s set values win; params are merged key by key."""
    out = JobSettings(**{k: v for k, v in vars(base).items()})
    for key, value in vars(over).items():
        if key == "params":
            out.params = {**base.params, **over.params}
        elif value is not None:
            setattr(out, key, value)
    if task is not None:
        out.task = task
    return out


def load_settings(project_dir: Path | None, task: str | None = None) -> JobSettings:
    """floyd.yml of ``project_dir`` (when there is one) for ``task``."""
    f = project_dir / YML_FILE if project_dir else None
    if f is None or not f.is_file():
        if task:
            raise ConfigError(f"--task {task}: there is no floyd.yml here to define it")
        return JobSettings()
    return settings_from_yaml(f.read_text(encoding="utf-8"), task)
