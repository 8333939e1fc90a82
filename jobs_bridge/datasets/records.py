"""JSON shapes of datasets and versions as the API returns them."""

from __future__ import annotations

from jobs_bridge.orm import Dataset, DatasetVersion


def dataset_json(ds: Dataset, latest: DatasetVersion | None = None, count: int | None = None) -> dict:
    return {
        "owner": ds.owner,
        "name": ds.name,
        "full_name": f"{ds.owner}/{ds.name}",
        "description": ds.description,
        "public": ds.public,
        "created_at": ds.created_at.isoformat(),
        "version_count": count,
        "latest": version_json(ds, latest) if latest else None,
    }


def version_json(ds: Dataset, v: DatasetVersion) -> dict:
    return {
        "dataset": f"{ds.owner}/{ds.name}",
        "number": v.number,
        "ref": f"{ds.owner}/{ds.name}:{v.number}",
        "id": v.version_id,
        "message": v.message,
        "created_by": v.created_by,
        "created_at": v.created_at.isoformat(),
        "size": v.size,
        "file_count": v.file_count,
    }
