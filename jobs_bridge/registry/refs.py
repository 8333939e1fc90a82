"""Model references (``iris``, ``alice/iris:3``, ``iris@production``) and job sources
(``alice/proj/12/output/PATH``), parsed and resolved as the caller sees them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.errors import BadRequest, NotFound
from jobs_bridge.names import check_name, check_owner, shown
from jobs_bridge.orm import Dataset, DatasetVersion, ModelAlias
from jobs_bridge.storage.paths import StorageLayout, clean_relpath

MODEL_REF_RE = re.compile(r"^(?:(?P<owner>[^/:@]+)/)?(?P<name>[^/:@]+)(?:(?P<sep>[:@])(?P<tag>[^/:@]+))?$")
JOB_SOURCE_RE = re.compile(r"^(?:(?P<owner>[^/]+)/)?(?P<project>[^/]+)/(?P<number>[^/]+)(?:/output(?:/(?P<path>.*))?)?$")
REF_HINT = "use NAME, NAME:VERSION or NAME@ALIAS, optionally OWNER/ first (e.g. alice/iris@production)."


@dataclass(frozen=True)
class ResolvedModel:
    """One model version, as an endpoint mounts it; ``alias`` is set when it was named by one."""

    model_id: int
    owner: str
    name: str
    number: int
    version_pk: int
    path: str  # host path of the materialized, read-only version
    alias: str = ""

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.name}:{self.number}" + (f"@{self.alias}" if self.alias else "")


@dataclass(frozen=True)
class JobSource:
    owner: str
    project: str
    number: str
    path: str  # relative to the job's output, "" for all of it


def check_alias(value: object) -> str:
    alias = check_name(value, "alias name")
    if alias == "latest" or alias.isdigit():
        raise BadRequest(f"Invalid alias name {alias!r}: 'latest' and numbers name versions; pick a word such as "
                         "'production'.")
    return alias


def parse_model_ref(raw: object, default_owner: str) -> tuple[str, str, str, str]:
    """``raw`` → (owner, name, ':' or '@' or '', version or alias)."""
    if not isinstance(raw, str) or len(raw) > 300 or not (m := MODEL_REF_RE.fullmatch(raw.strip())):
        raise BadRequest(f"Invalid model {shown(raw)}: {REF_HINT}")
    owner = check_owner(m.group("owner") or default_owner)
    name = check_name(m.group("name"), "model name")
    sep, tag = m.group("sep") or "", m.group("tag") or ""
    if sep == "@":
        check_alias(tag)
    return owner, name, sep, tag


def parse_job_source(raw: object, default_owner: str) -> JobSource:
    if not isinstance(raw, str) or len(raw) > 2048 or not (m := JOB_SOURCE_RE.fullmatch(raw.strip().rstrip("/"))):
        raise BadRequest(f"Invalid source job {shown(raw)}: use OWNER/PROJECT/NUMBER, optionally followed by "
                         "/output/PATH (e.g. alice/iris/12/output/model).")
    owner = check_owner(m.group("owner") or default_owner)
    project = check_name(m.group("project"), "project name")
    path = clean_relpath(m.group("path"), "output path") if m.group("path") else ""
    return JobSource(owner, project, m.group("number"), path)


def find_model(s: Session, caller: Caller, owner: str, name: str, *, write: bool = False) -> Dataset:
    return DatasetManager.find(s, caller, owner, name, write=write, kind="model")


def find_model_version(s: Session, model: Dataset, tag: str, alias: bool = False) -> DatasetVersion:
    """A version by number, 'latest' (or nothing), or by alias."""
    if alias:
        row = s.scalar(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.name == tag))
        if row is None:
            raise NotFound(f"Model {model.owner}/{model.name} has no alias {tag!r}; set it with "
                           f"`floyd model alias {model.name} {tag} VERSION`.")
        tag = str(row.number)
    if tag in ("", "latest"):
        v = s.scalar(select(DatasetVersion).where(DatasetVersion.dataset_id == model.id)
                     .order_by(DatasetVersion.number.desc()).limit(1))
        if v is None:
            raise NotFound(f"Model {model.owner}/{model.name} has no versions yet; register one with "
                           "`floyd model register`.")
        return v
    v = DatasetManager.find_version(s, model, tag)
    return v


def resolve_model(s: Session, caller: Caller, layout: StorageLayout, raw: object) -> ResolvedModel:
    """A model reference of a deploy, checked as the caller (private models are 404 to others)."""
    owner, name, sep, tag = parse_model_ref(raw, caller.name)
    model = find_model(s, caller, owner, name)
    v = find_model_version(s, model, tag, alias=sep == "@")
    return ResolvedModel(model.id, owner, name, v.number, v.id, str(layout.version_dir(owner, name, v.number, "model")),
                         tag if sep == "@" else "")


def model_version_by_number(s: Session, layout: StorageLayout, model_id: int, number: int,
                            alias: str = "") -> ResolvedModel | None:
    """A version of a model the caller has been checked for already (an endpoint following an alias)."""
    model = s.get(Dataset, model_id)
    if model is None:
        return None
    v = s.scalar(select(DatasetVersion).where(DatasetVersion.dataset_id == model_id, DatasetVersion.number == number))
    if v is None:
        return None
    return ResolvedModel(model.id, model.owner, model.name, v.number, v.id,
                         str(layout.version_dir(model.owner, model.name, v.number, "model")), alias)
