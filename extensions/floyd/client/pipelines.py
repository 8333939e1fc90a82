"""``pipelines:`` of floyd.yml → the body of ``POST /api/v1/pipelines`` (pure: text in, body out).

::

    pipelines:
      train:
        steps:
          prepare:
            command: python prepare.py
            code: [prepare.py]           # what the step's code is (for reuse); default: the whole project
            input: [mnist:3:raw]         # datasets, as in a task
          fit:
            command: python fit.py
            params: {lr: 0.01}
            input:
              - {from: prepare/output/clean, destination: clean}   # another step's output (a folder of it)

A step takes a task's keys (command, env, machine, resources, input, params, max_runtime) plus
``code``. The steps must form a DAG: an unknown step or a cycle is an error naming the key,
found before anything is uploaded. The bridge checks the same again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from floyd.client.project_config import ConfigError, _inputs, _section, load_yaml
from floyd.client.request import default_what, expand_source

STEP_KEYS = ("code", "command", "env", "input", "machine", "max_runtime", "params", "resources")


def _step_inputs(value: object, where: str, project: str) -> list[dict]:
    items = value if isinstance(value, list) else [value]
    out: list[dict] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "from" in item:
            unknown = set(item) - {"from", "destination", "mount"}
            if unknown or not isinstance(item["from"], str):
                raise ConfigError(f"floyd.yml: {where}.input[{i}] takes from: STEP/output[/FOLDER] and "
                                  f"destination (not {', '.join(sorted(map(str, unknown))) or repr(item['from'])})")
            entry = {"from": item["from"]}
            if item.get("destination") or item.get("mount"):
                entry["mount"] = str(item.get("destination") or item.get("mount"))
            out.append(entry)
        else:
            for parsed in _inputs([item], where):
                out.append({**parsed, "source": expand_source(parsed["source"], project)})
    return out


def _step(name: str, raw: object, where: str, project: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"floyd.yml: {where} must be a mapping of keys ({', '.join(STEP_KEYS)})")
    unknown = sorted(str(k) for k in raw if k not in STEP_KEYS)
    if unknown:
        raise ConfigError(f"floyd.yml: unknown key {unknown[0]!r} in {where} (allowed: {', '.join(STEP_KEYS)})")
    settings = _section({k: v for k, v in raw.items() if k not in ("code", "input")}, where)
    if not settings.command:
        raise ConfigError(f"floyd.yml: {where} needs a command (or a notebook as command: NAME.ipynb)")
    body: dict[str, Any] = {**default_what(settings.command), **settings.request()}
    if raw.get("input") is not None:
        body["inputs"] = _step_inputs(raw["input"], where, project)
    code = raw.get("code")
    if code is not None:
        if isinstance(code, str):
            code = [code]
        if not isinstance(code, list) or not all(isinstance(c, str) and c.strip() for c in code):
            raise ConfigError(f"floyd.yml: {where}.code must be a list of files or folders, e.g. [prepare/]")
        body["code"] = code
    return body


def check_dag(steps: Mapping[str, dict], where: str) -> None:
    """Every ``from`` names a step of the pipeline, and no chain of them comes back to its start."""
    needs: dict[str, set[str]] = {}
    for name, body in steps.items():
        needs[name] = set()
        for i, item in enumerate(body.get("inputs", [])):
            if "from" in item:
                parent = item["from"].strip("/").split("/", 1)[0]
                if parent not in steps:
                    raise ConfigError(f"floyd.yml: {where}.{name}.input[{i}].from: no step {parent!r} "
                                      f"(steps: {', '.join(sorted(steps))})")
                needs[name].add(parent)
    left = dict(needs)
    while left:  # take away steps whose inputs are all taken; what stays is on a cycle
        free = [n for n, ns in left.items() if not ns & left.keys()]
        if not free:
            raise ConfigError(f"floyd.yml: {where}: the steps {', '.join(sorted(left))} take inputs from each "
                              "other in a cycle")
        for n in free:
            del left[n]


def pipeline_steps(text: str, name: str, project: str) -> dict[str, dict]:
    """The steps of pipeline ``name`` in floyd.yml ``text`` as the bridge takes them."""
    pipelines = load_yaml(text).get("pipelines")
    if not isinstance(pipelines, dict) or not pipelines:
        raise ConfigError("floyd.yml has no pipelines: (pipelines: {NAME: {steps: {STEP: {command: …}}}})")
    if name not in pipelines:
        raise ConfigError(f"floyd.yml has no pipeline {name!r} (pipelines: {', '.join(sorted(map(str, pipelines)))})")
    body = pipelines[name]
    if not isinstance(body, dict) or set(body) - {"steps"} or not isinstance(body.get("steps"), dict):
        raise ConfigError(f"floyd.yml: pipelines.{name} must be {{steps: {{STEP: {{command: …}}}}}}")
    where = f"pipelines.{name}.steps"
    steps = {str(k): _step(str(k), v, f"{where}.{k}", project) for k, v in body["steps"].items()}
    check_dag(steps, where)
    return steps


def apply_params(steps: dict[str, dict], flags: tuple[str, ...] | list[str]) -> dict[str, dict]:
    """``--param STEP.NAME=VALUE`` over the steps' params."""
    out = {k: dict(v) for k, v in steps.items()}
    for flag in flags:
        key, eq, value = flag.partition("=")
        step, dot, param = key.strip().partition(".")
        if not eq or not dot or step not in out or not param:
            raise ConfigError(f"--param {flag}: write STEP.NAME=VALUE with a step of the pipeline "
                              f"({', '.join(sorted(out))}), e.g. --param train.lr=0.01")
        out[step]["params"] = {**out[step].get("params", {}), param: value}
    return out


def parse_saves(flags: tuple[str, ...] | list[str], option: str = "--save-output", what: str = "DATASET",
                example: str = "prepare=clean-data") -> dict[str, str]:
    """``--save-output STEP=DATASET`` (or ``--save-model STEP=MODEL``) → {step: name}."""
    out = {}
    for flag in flags:
        step, eq, name = flag.partition("=")
        if not eq or not step.strip() or not name.strip():
            raise ConfigError(f"{option} {flag}: write STEP={what}, e.g. {option} {example}")
        out[step.strip()] = name.strip()
    return out
