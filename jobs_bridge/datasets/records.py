"""JSON shapes of datasets and versions as the API returns them."""

from __future__ import annotations

from datetime import datetime, timezone

from jobs_bridge.orm import Dataset, DatasetVersion


def iso(dt: datetime) -> str:
    """ISO 8601 with the zone, also for databases (SQLite) that hand back naive UTC times."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


def dataset_json(ds: Dataset, latest: DatasetVersion | None = None, count: int | None = None) -> dict:
    return {
        "owner": ds.owner,
        "name": ds.name,
        "full_name": f"{ds.owner}/{ds.name}",
        "description": ds.description,
        "public": ds.public,
        "created_at": iso(ds.created_at),
        "version_count": count,
        "latest": version_json(ds, latest) if latest else None,
    }


def version_json(ds: Dataset, v: DatasetVersion) -> dict:
    return {
        "dataset": f"{ds.owner}/{ds.name}",
        "owner": ds.owner,  # owner, name and number fill the version's routes (openapi.yaml links)
        "name": ds.name,
        "number": v.number,
        "ref": f"{ds.owner}/{ds.name}:{v.number}",
        "id": v.version_id,
        "message": v.message,
        "created_by": v.created_by,
        "created_at": iso(v.created_at),
        "size": v.size,
        "file_count": v.file_count,
    }
