"""The model registry: versions registered from job outputs, aliases and their history.

A model is a ``Dataset`` of kind ``model`` and each version a ``DatasetVersion`` of it: the
same manifests, the same blobs (a job's output files are hardlinked into the store, never
copied), the same access rule. ``ModelVersion`` adds what the version was made from.
"""

from __future__ import annotations

import builtins  # the method `list` hides the type in this class's annotations
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.datasets.uploads import UploadManager
from jobs_bridge.errors import BadRequest, Conflict, NotFound
from jobs_bridge.inputs import find_job
from jobs_bridge.jobs import states
from jobs_bridge.names import NAME_MAX, NAME_RE, check_name, check_owner
from jobs_bridge.orm import (
    Dataset,
    DatasetVersion,
    Endpoint,
    EndpointVersion,
    Job,
    JobMetric,
    ModelAlias,
    ModelAliasEvent,
    ModelVersion,
)
from jobs_bridge.registry.records import alias_json, event_json, model_json, model_version_json
from jobs_bridge.registry.refs import check_alias, find_model, find_model_version, parse_job_source
from jobs_bridge.storage.materialize import remove_tree
from jobs_bridge.storage.paths import StorageLayout, contained
from jobs_bridge.timeutil import utcnow
from jobs_bridge.validate import id_number, json_bool, only_keys

MAX_TAGS = 32
LIVE_STATES = ("deploying", "ready", "draining")


def check_description(value: object) -> str:
    if not isinstance(value, str) or len(value) > 10_000:
        raise BadRequest("'description' must be a string of at most 10,000 characters.")
    return value


def check_tags(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise BadRequest(f"'tags' must be a list of at most {MAX_TAGS} names, e.g. [\"baseline\", \"sklearn\"].")
    for tag in value:
        if not isinstance(tag, str) or len(tag) > NAME_MAX or not NAME_RE.fullmatch(tag):
            check_name(tag, "tag")
    return sorted(set(value))


class ModelManager(LoggingConfigurable):
    """Models and their versions; the storage work is the dataset store's (``UploadManager``)."""

    def __init__(self, *, sessions: sessionmaker[Session], layout: StorageLayout, datasets: DatasetManager,
                 uploads: UploadManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.datasets = datasets
        self.uploads = uploads

    # -- reading -------------------------------------------------------------------------
    def _aliases(self, s: Session, model: Dataset) -> builtins.list[ModelAlias]:
        return list(s.scalars(select(ModelAlias).where(ModelAlias.model_id == model.id)))

    def _summary(self, s: Session, model: Dataset) -> dict:
        count = s.scalar(select(func.count()).where(DatasetVersion.dataset_id == model.id)) or 0
        latest = s.scalar(select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == model.id))
        return model_json(model, count, latest, self._aliases(s, model))

    def _version_json(self, s: Session, model: Dataset, v: DatasetVersion) -> dict:
        names = [a.name for a in self._aliases(s, model) if a.number == v.number]
        return model_version_json(model, v, s.get(ModelVersion, v.id), names)

    def list(self, caller: Caller, owner: str | None = None, public: bool = False) -> builtins.list[dict]:
        with self.sessions() as s:
            q = select(Dataset).where(Dataset.kind == "model").order_by(Dataset.owner, Dataset.name)
            if owner is not None:
                q = q.where(Dataset.owner == check_owner(owner))
            elif public:
                q = q.where(Dataset.public.is_(True))
            elif not caller.admin:
                q = q.where(Dataset.owner == caller.name)
            return [self._summary(s, m) for m in s.scalars(q)
                    if caller.admin or m.owner == caller.name or m.public]

    def get(self, caller: Caller, owner: str, name: str) -> dict:
        """The model with its versions, aliases, alias history and the endpoints that mount it."""
        with self.sessions() as s:
            model = find_model(s, caller, owner, name)
            versions = s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == model.id)
                                 .order_by(DatasetVersion.number.desc()))
            events = s.scalars(select(ModelAliasEvent).where(ModelAliasEvent.model_id == model.id)
                               .order_by(ModelAliasEvent.id.desc()).limit(100))
            return self._summary(s, model) | {
                "versions": [self._version_json(s, model, v) for v in versions],
                "alias_details": [alias_json(a) for a in sorted(self._aliases(s, model), key=lambda a: a.name)],
                "alias_history": [event_json(e) for e in events],
                "deployments": self._deployments(s, caller, model),
            }

    def _deployments(self, s: Session, caller: Caller, model: Dataset) -> builtins.list[dict]:
        """Endpoint versions that mount this model (the caller's own, or all for an admin): a
        rollout that failed after an alias moved says why here as on the endpoint's page."""
        q = (select(Endpoint, EndpointVersion).join(EndpointVersion, EndpointVersion.endpoint_id == Endpoint.id)
             .join(DatasetVersion, DatasetVersion.id == EndpointVersion.model_version_pk)
             .where(DatasetVersion.dataset_id == model.id).order_by(EndpointVersion.id.desc()).limit(50))
        if not caller.admin:
            q = q.where(Endpoint.owner == caller.name)
        return [{"endpoint": f"{ep.owner}/{ep.name}", "version": v.number, "state": v.state,
                 "reason": v.reason.partition("\n")[0], "model_ref": v.model_ref,
                 "following": ep.follow_alias if ep.follow_model_id == model.id else ""}
                for ep, v in s.execute(q).tuples()]

    def versions(self, caller: Caller, owner: str, name: str) -> builtins.list[dict]:
        with self.sessions() as s:
            model = find_model(s, caller, owner, name)
            rows = s.scalars(select(DatasetVersion).where(DatasetVersion.dataset_id == model.id)
                             .order_by(DatasetVersion.number))
            return [self._version_json(s, model, v) for v in rows]

    def version(self, caller: Caller, owner: str, name: str, tag: str) -> dict:
        """A version by number, 'latest', or an alias."""
        with self.sessions() as s:
            model = find_model(s, caller, owner, name)
            is_alias = bool(tag) and not tag.isdigit() and tag != "latest"
            if is_alias:
                check_alias(tag)
            return self._version_json(s, model, find_model_version(s, model, tag, alias=is_alias))

    # -- registering -----------------------------------------------------------------------
    def register(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        """A new version from a finished job's output (or a path inside it), without copying bytes."""
        check_owner(owner)
        check_name(name, "model name")
        with self.sessions() as s:  # who may register here is settled before the body is judged
            exists = self._check_registrable(s, caller, owner, name)
            only_keys(body, {"from", "description", "tags"})
            description = check_description(body.get("description") or "")
            tags = check_tags(body.get("tags") or [])
            source = parse_job_source(body.get("from"), caller.name)
            job = find_job(s, caller, source.owner, source.project, source.number)
            job_ref = f"{job.owner}/{job.project}/{job.number}"
            if job.state not in states.FINISHED:
                raise Conflict(f"Job {job_ref} is {job.state}; register its output once it has ended.")
            meta = self._job_meta(s, job, source.path)
        output = self.layout.job_output(job.owner, job.project, job.number)
        top = contained(output, source.path) if source.path else output
        if not top.exists():
            raise NotFound(f"Job {job_ref} has no output {source.path!r}; see `floyd output {job_ref}`.")
        entries = self.uploads.link_tree(top)
        if not entries:
            raise Conflict(f"Job {job_ref} wrote no output files" + (f" under {source.path!r}." if source.path else "."))
        if not exists:
            self._create(owner, name)
        result: dict = {}

        def record(s: Session, v: DatasetVersion) -> None:
            """In the version's own transaction: its source, and the owner's claim on its blobs."""
            row = ModelVersion(version_pk=v.id, tags=json.dumps(tags), **meta)
            s.add(row)
            self.uploads.add_owners(s, owner, [e.hexdigest for e in entries])
            model = s.get(Dataset, v.dataset_id)
            assert model is not None
            result.update(model_version_json(model, v, row, []))

        self.uploads.commit_entries(caller, owner, name, "model", entries, description, caller.name,
                                    allow_duplicate=True, on_commit=record)
        return result

    def _create(self, owner: str, name: str) -> None:
        with self.datasets.lock(owner, name), self.sessions.begin() as s:
            if s.scalar(select(Dataset.id).where(Dataset.owner == owner, Dataset.name == name,
                                                 Dataset.kind == "model")) is None:
                s.add(Dataset(owner=owner, name=name, kind="model", description="", public=False))

    @staticmethod
    def _check_registrable(s: Session, caller: Caller, owner: str, name: str) -> bool:
        """Whether the model exists (and the caller may add to it); a missing one only its owner makes."""
        exists = s.scalar(select(Dataset.id).where(Dataset.owner == owner, Dataset.name == name,
                                                   Dataset.kind == "model"))
        if exists is not None:
            find_model(s, caller, owner, name, write=True)
        elif owner != caller.name and not caller.admin:
            raise NotFound(f"Model {owner}/{name} not found; you can register models under your own name "
                           f"({caller.name}/{name}).")
        return exists is not None

    @staticmethod
    def _job_meta(s: Session, job: Job, path: str) -> dict:
        last = (select(JobMetric.name, JobMetric.value).where(JobMetric.job_id == job.id)
                .where(JobMetric.id.in_(select(func.max(JobMetric.id)).where(JobMetric.job_id == job.id)
                                        .group_by(JobMetric.name))))
        return {"job_id": job.id, "source_job": f"{job.owner}/{job.project}/{job.number}", "output_path": path,
                "params": job.params, "metrics": json.dumps(dict(s.execute(last).tuples().all())),
                "image_id": job.image_id, "snapshot": job.snapshot}

    # -- changing ----------------------------------------------------------------------------
    def update(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        """Share (``public``) or describe the model; its versions never change."""
        only_keys(body, {"public", "description"})
        with self.sessions.begin() as s:
            model = find_model(s, caller, owner, name, write=True)
            if "public" in body:
                model.public = json_bool(body["public"], "public")
            if "description" in body:
                model.description = check_description(body["description"])
            s.flush()
            return self._summary(s, model)

    def delete(self, caller: Caller, owner: str, name: str) -> None:
        with self.datasets.lock(owner, name), self.sessions.begin() as s:
            model = find_model(s, caller, owner, name, write=True)
            if s.scalar(select(func.count()).where(DatasetVersion.dataset_id == model.id)):
                raise Conflict(f"Model {owner}/{name} still has versions; delete them first "
                               f"(`floyd model delete {name}:N`).")
            s.delete(model)
        remove_tree(self.layout.dataset_dir(owner, name, "model"))

    def delete_version(self, caller: Caller, owner: str, name: str, number: str, force: bool = False) -> dict:
        """Kept while an alias names it or an endpoint serves it, unless forced."""
        with self.sessions() as s:
            model = find_model(s, caller, owner, name, write=True)
            v = find_model_version(s, model, str(id_number(number, "version", "use a number.")))
            aliases = [a.name for a in self._aliases(s, model) if a.number == v.number]
            serving = s.scalar(select(func.count()).where(EndpointVersion.model_version_pk == v.id,
                                                          EndpointVersion.state.in_(LIVE_STATES)))
        if aliases:
            raise Conflict(f"{owner}/{name}:{v.number} is the alias {', '.join(aliases)}; move the alias first "
                           f"(`floyd model alias {name} {aliases[0]} VERSION`).")
        if serving and not force:
            raise Conflict(f"{owner}/{name}:{v.number} is mounted by {serving} running endpoint version(s); "
                           "stop them first or pass force.")
        return self.datasets.delete_version(caller, owner, name, v.number, force, kind="model")

    # -- aliases -----------------------------------------------------------------------------
    def move_alias(self, caller: Caller, owner: str, name: str, alias: str, body: dict) -> dict:
        """Point ``alias`` at a version in one transaction, recording who moved it from where."""
        with self.datasets.lock(owner, name), self.sessions.begin() as s:
            model = find_model(s, caller, owner, name, write=True)
            only_keys(body, {"version"})
            alias = check_alias(alias)
            number = id_number(body.get("version"), "version", "give the version number the alias should name.")
            v = find_model_version(s, model, str(number))
            row = s.scalar(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.name == alias))
            previous = row.number if row else None
            if row is None:
                row = ModelAlias(model_id=model.id, name=alias, number=v.number, moved_by=caller.name)
                s.add(row)
            elif row.number != v.number:
                row.number, row.moved_by, row.moved_at = v.number, caller.name, utcnow()
            if previous != v.number:
                s.add(ModelAliasEvent(model_id=model.id, alias=alias, from_number=previous, to_number=v.number,
                                      moved_by=caller.name))
            s.flush()
            return alias_json(row) | {"model": f"{owner}/{name}", "model_id": model.id, "from_version": previous,
                                      "moved": previous != v.number}

    def delete_alias(self, caller: Caller, owner: str, name: str, alias: str) -> None:
        with self.datasets.lock(owner, name), self.sessions.begin() as s:
            model = find_model(s, caller, owner, name, write=True)
            alias = check_alias(alias)
            row = s.scalar(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.name == alias))
            if row is None:
                raise NotFound(f"Model {owner}/{name} has no alias {alias!r}.")
            s.add(ModelAliasEvent(model_id=model.id, alias=alias, from_number=row.number, to_number=None,
                                  moved_by=caller.name))
            s.delete(row)
