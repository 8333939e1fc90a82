"""JSON shapes of models, their versions and aliases, as the API returns them."""

from __future__ import annotations

import json

from jobs_bridge.datasets.records import iso, version_json
from jobs_bridge.orm import Dataset, DatasetVersion, ModelAlias, ModelAliasEvent, ModelVersion


def model_version_json(model: Dataset, v: DatasetVersion, meta: ModelVersion | None, aliases: list[str]) -> dict:
    """A dataset version's shape plus where it came from (the lineage walks ``source_job``)."""
    base = version_json(model, v)
    base.pop("dataset")
    base.pop("message")
    return base | {
        "model": f"{model.owner}/{model.name}",
        "description": v.message,
        "tags": json.loads(meta.tags) if meta else [],
        "source_job": meta.source_job if meta else None,
        "output_path": meta.output_path if meta else "",
        "params": json.loads(meta.params) if meta else {},
        "metrics": json.loads(meta.metrics) if meta else {},
        "image_id": meta.image_id if meta else "",
        "snapshot": meta.snapshot if meta else "",
        "aliases": sorted(aliases),
    }


def model_json(model: Dataset, count: int, latest: int | None, aliases: list[ModelAlias]) -> dict:
    return {
        "model": f"{model.owner}/{model.name}", "owner": model.owner, "name": model.name,
        "description": model.description, "public": model.public, "created_at": iso(model.created_at),
        "version_count": count, "latest_version": latest,
        "aliases": {a.name: a.number for a in sorted(aliases, key=lambda a: a.name)},
    }


def alias_json(a: ModelAlias) -> dict:
    return {"alias": a.name, "version": a.number, "moved_by": a.moved_by, "moved_at": iso(a.moved_at)}


def event_json(e: ModelAliasEvent) -> dict:
    return {"alias": e.alias, "from_version": e.from_number, "to_version": e.to_number, "moved_by": e.moved_by,
            "moved_at": iso(e.moved_at)}
