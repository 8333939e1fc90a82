"""References to the objects of the lineage graph: parsed from what a person types, written
back in one canonical form (``KIND:KEY``) that every node carries as its ``ref``.

| kind       | canonical                         | shorthand                    |
|------------|-----------------------------------|------------------------------|
| job        | ``job:alice/proj/12``             | ``alice/proj/12``, ``proj/12`` |
| dataset    | ``dataset:alice/mnist:3``         | ``alice/mnist@3``, ``mnist@3`` |
| snapshot   | ``snapshot:alice/proj/sha256:…``  | —                            |
| endpoint   | ``endpoint:alice/iris:2``         | ``alice/iris:2``, ``iris`` (the serving version) |
| model      | ``model:alice/iris:3``            | ``model:iris@production``, ``model:iris`` (latest) |

A model version always carries the ``model:`` prefix: ``alice/iris:3`` is an endpoint version and
``alice/iris@3`` a dataset version, and a model, a dataset and an endpoint may share a name.
After the prefix come the registry's own forms (``registry.refs.parse_model_ref``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jobs_bridge.errors import BadRequest
from jobs_bridge.names import check_name, check_owner, shown
from jobs_bridge.registry.refs import parse_model_ref
from jobs_bridge.validate import id_number

HINT = ("Use a job (alice/proj/12), a dataset version (alice/mnist@3), an endpoint (alice/iris or "
        "alice/iris:2), a model version (model:alice/iris:3 or model:iris@production) or a canonical ref "
        "such as job:alice/proj/12.")
SHA_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_REF = 400


@dataclass(frozen=True)
class Ref:
    """One object: its kind and the parts that name it (owner first)."""

    kind: str
    owner: str
    name: str  # project, dataset or endpoint name
    item: str  # job number, version number, snapshot id; "" for an endpoint's serving version

    def __str__(self) -> str:
        if self.kind == "job":
            return f"job:{self.owner}/{self.name}/{self.item}"
        if self.kind == "snapshot":
            return f"snapshot:{self.owner}/{self.name}/{self.item}"
        sep = "" if self.item.startswith("@") else ":"  # a model's alias: model:alice/iris@production
        return f"{self.kind}:{self.owner}/{self.name}" + (f"{sep}{self.item}" if self.item else "")


def _owner_name(text: str, default_owner: str, what: str) -> tuple[str, str]:
    owner, _, name = text.rpartition("/")
    return check_owner(owner or default_owner), check_name(name, what)


def _number(text: str, what: str) -> str:
    return str(id_number(text, what, HINT))


def parse(text: object, default_owner: str) -> Ref:
    """A ref as typed (canonical or shorthand) → Ref; anything else is a 400 that shows the forms."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(f"'ref' is required. {HINT}")
    if len(text) > MAX_REF or "\x00" in text:
        raise BadRequest(f"Invalid ref {shown(text)}. {HINT}")
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if sep and kind in ("job", "dataset", "snapshot", "endpoint", "model"):
        return _canonical(kind, rest, default_owner)
    parts = text.removesuffix("/output").split("/")
    if len(parts) in (2, 3) and parts[-1].isdigit():
        return _canonical("job", text, default_owner)
    if "@" in text and "/" not in text.rpartition("@")[2]:
        base, _, version = text.rpartition("@")
        return _canonical("dataset", f"{base}:{version}", default_owner)
    return _canonical("endpoint", text, default_owner)


def _canonical(kind: str, rest: str, default_owner: str) -> Ref:
    if kind == "job":
        parts = rest.removesuffix("/output").split("/")
        if len(parts) == 2:
            parts.insert(0, default_owner)
        if len(parts) != 3:
            raise BadRequest(f"Invalid job {shown(rest)}: use OWNER/PROJECT/NUMBER (e.g. alice/mnist-cnn/12).")
        return Ref("job", check_owner(parts[0]), check_name(parts[1], "project name"), _number(parts[2], "job number"))
    if kind == "snapshot":
        base, _, sha = rest.rpartition("/")
        if not SHA_RE.fullmatch(sha):
            raise BadRequest(f"Invalid snapshot {shown(rest)}: use OWNER/PROJECT/sha256:<64 hex digits>.")
        return Ref("snapshot", *_owner_name(base, default_owner, "project name"), sha)
    if kind == "model":
        return _model(rest, default_owner)
    base, _, version = rest.partition(":")
    if kind == "dataset":
        if not version:
            raise BadRequest(f"Invalid dataset version {shown(rest)}: name the version, e.g. alice/mnist@3.")
        return Ref("dataset", *_owner_name(base, default_owner, "dataset name"), _number(version, "version"))
    owner, name = _owner_name(base, default_owner, "endpoint name")
    return Ref("endpoint", owner, name, _number(version.removeprefix("v"), "version") if version else "")


def _model(rest: str, default_owner: str) -> Ref:
    """``model:`` + a registry ref; the item is a number, ``@alias`` or "" (latest), resolved by
    the model node to the version's number."""
    owner, name, sep, tag = parse_model_ref(rest, default_owner)
    if sep == "@":
        return Ref("model", owner, name, "@" + tag)
    return Ref("model", owner, name, _number(tag, "version") if tag and tag != "latest" else "")
