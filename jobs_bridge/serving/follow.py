"""Endpoints that follow a model alias: when the alias moves, each gets a new version that is
its newest one with the model it now names; the usual rollout (zero-drop, the old version
serving on if the new one fails) takes it from there."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.orm import Dataset, Endpoint, EndpointReplica, EndpointVersion
from jobs_bridge.registry.refs import ResolvedModel, model_version_by_number
from jobs_bridge.serving.router import DEPLOYING
from jobs_bridge.storage.paths import StorageLayout

log = logging.getLogger("jobs_bridge.serving")


@dataclass(frozen=True)
class Started:
    owner: str
    name: str
    version_pk: int
    number: int
    gpus: int = 0  # per replica, as the version it follows


def model_fields(model: ResolvedModel | None) -> dict:
    """The columns of an endpoint version that say which model version it mounts."""
    if model is None:
        return {"model_version_pk": None, "model_ref": "", "model_path": ""}
    return {"model_version_pk": model.version_pk, "model_ref": model.ref, "model_path": model.path}


def successor(base: EndpointVersion, number: int, model: ResolvedModel, by: str) -> EndpointVersion:
    """``base`` again (code, entry, environment, resources, inputs) with another model."""
    return EndpointVersion(
        endpoint_id=base.endpoint_id, number=number, state=DEPLOYING, reason=f"starting {base.replicas} replica(s)",
        project=base.project, snapshot=base.snapshot, requirements_hash=base.requirements_hash, entry=base.entry,
        environment=base.environment, image=base.image, image_id=base.image_id, cpus=base.cpus, memory=base.memory,
        gpus=base.gpus, replicas=base.replicas, inputs=base.inputs, health_path=base.health_path,
        message=f"{model.owner}/{model.name}@{model.alias} moved to version {model.number}", created_by=by,
        **model_fields(model),
    )


def roll_forward(sessions: sessionmaker[Session], layout: StorageLayout, model_id: int, alias: str,
                 number: int) -> list[Started]:
    """New version rows (and their replica rows) for every endpoint following ``alias``."""
    started: list[Started] = []
    with sessions.begin() as s:
        model = model_version_by_number(s, layout, model_id, number, alias)
        if model is None:
            return started
        row = s.get(Dataset, model_id)
        q = select(Endpoint).where(Endpoint.follow_model_id == model_id, Endpoint.follow_alias == alias)
        for ep in s.scalars(q):
            if row is None or not (row.public or ep.owner == row.owner):
                # the model is no longer shared with the endpoint's owner: it keeps what it serves
                log.warning("Endpoint %s/%s follows %s@%s, which its owner may no longer read; not rolled out",
                            ep.owner, ep.name, model.ref, alias)
                continue
            base = s.scalar(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id)
                            .order_by(EndpointVersion.number.desc()).limit(1))
            if base is None or base.model_version_pk == model.version_pk:
                continue
            ep.last_number += 1
            v = successor(base, ep.last_number, model, ep.owner)
            s.add(v)
            s.flush()
            for i in range(v.replicas):
                s.add(EndpointReplica(version_id=v.id, index=i))
            layout.endpoint_version_dir(ep.owner, ep.name, v.number).mkdir(parents=True, exist_ok=True)
            started.append(Started(ep.owner, ep.name, v.id, v.number, v.gpus))
    return started
