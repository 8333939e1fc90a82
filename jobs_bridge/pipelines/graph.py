"""A pipeline's steps read from a request and checked as a DAG (pure: no database, no Docker).

Every problem is a 400 whose message names the key (``steps.train.inputs[1].from``), so the
person can find it in floyd.yml; nothing is stored before the whole graph is known to be good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs_bridge.errors import BadRequest
from jobs_bridge.names import check_name, shown
from jobs_bridge.storage.paths import clean_relpath

# What a step may say; everything but ``code`` and ``from`` inputs is a job request's field.
STEP_KEYS = ("code", "command", "cpus", "environment", "gpus", "inputs", "max_runtime", "memory", "notebook",
             "params")
JOB_KEYS = tuple(k for k in STEP_KEYS if k not in ("code", "inputs"))


@dataclass
class FromInput:
    """Another step's output (or one folder of it) mounted read-only at ``/floyd/input/<mount>``."""

    step: str
    path: str
    mount: str


@dataclass
class StepSpec:
    name: str
    job: dict  # the job request's fields of this step (command, environment, params…)
    datasets: list[dict] = field(default_factory=list)  # inputs that are not other steps
    upstream: list[FromInput] = field(default_factory=list)
    code: list[str] = field(default_factory=list)  # snapshot paths that make the step's code; [] = all

    @property
    def needs(self) -> list[str]:
        return sorted({u.step for u in self.upstream})


def _from_input(item: dict, where: str) -> FromInput:
    """``{"from": "prepare/output/clean", "mount": "clean"}`` (``/output`` may be left out)."""
    unknown = set(item) - {"from", "mount"}
    if unknown:
        raise BadRequest(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: from, mount).")
    ref = item["from"]
    if not isinstance(ref, str) or not ref.strip("/"):
        raise BadRequest(f"{where}.from must be STEP[/output[/FOLDER]], e.g. 'prepare/output/clean'.")
    step, _, rest = ref.strip("/").partition("/")
    if rest == "output" or rest.startswith("output/"):
        rest = rest[len("output"):].lstrip("/")
    path = clean_relpath(rest, f"{where}.from folder") if rest else ""
    mount = item.get("mount") or (path.rsplit("/", 1)[-1] if path else step)
    return FromInput(check_name(step, f"step in {where}.from"), path, check_name(mount, f"{where}.mount"))


def _step(name: str, raw: object) -> StepSpec:
    where = f"steps.{name}"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object with {', '.join(STEP_KEYS)}.")
    unknown = set(raw) - set(STEP_KEYS)
    if unknown:
        raise BadRequest(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                         f"(allowed: {', '.join(STEP_KEYS)}).")
    spec = StepSpec(name, {k: raw[k] for k in JOB_KEYS if raw.get(k) is not None})
    inputs = raw.get("inputs") or []
    if not isinstance(inputs, list):
        raise BadRequest(f"{where}.inputs must be a list of datasets ({{source, mount}}) and steps ({{from, mount}}).")
    for i, item in enumerate(inputs):
        if isinstance(item, dict) and "from" in item:
            spec.upstream.append(_from_input(item, f"{where}.inputs[{i}]"))
        else:
            spec.datasets.append(item)
    mounts = [u.mount for u in spec.upstream]
    twice = sorted({m for m in mounts if mounts.count(m) > 1})
    if twice:
        raise BadRequest(f"{where}.inputs: two step outputs would be mounted at /floyd/input/{twice[0]}; "
                         "give one of them another mount.")
    code = raw.get("code") or []
    if isinstance(code, str):
        code = [code]
    if not isinstance(code, list):
        raise BadRequest(f"{where}.code must be a list of files or folders of the project, e.g. ['prepare/'].")
    spec.code = sorted({clean_relpath(c, f"{where}.code path") for c in code})
    return spec


def topological(steps: dict[str, StepSpec]) -> list[StepSpec]:
    """The steps with every step after those it needs; a 400 naming an unknown step or a cycle."""
    for spec in steps.values():
        for need in spec.needs:
            if need not in steps:
                raise BadRequest(f"steps.{spec.name}: input from unknown step {shown(need)} "
                                 f"(steps: {', '.join(sorted(steps))}).")
            if need == spec.name:
                raise BadRequest(f"steps.{spec.name}: a step cannot take its own output as input.")
    order: list[StepSpec] = []
    state: dict[str, str] = {}  # name → "visiting" | "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise BadRequest(f"steps: {' → '.join(cycle)} is a cycle; a step's inputs must come from earlier steps.")
        state[name] = "visiting"
        for need in steps[name].needs:
            visit(need, [*path, name])
        state[name] = "done"
        order.append(steps[name])

    for name in sorted(steps):
        visit(name, [])
    return order


def parse_steps(raw: object, max_steps: int) -> list[StepSpec]:
    """The request's ``steps`` ({name: step}) → the steps in an order that respects their inputs."""
    if not isinstance(raw, dict) or not raw:
        raise BadRequest("'steps' must be an object of step name → {command, inputs, params, …}, with at least one step.")
    if len(raw) > max_steps:
        raise BadRequest(f"The pipeline has {len(raw)} steps; at most {max_steps} are allowed.")
    steps = {check_name(name, "step name"): _step(name, body) for name, body in raw.items()}
    return topological(steps)

