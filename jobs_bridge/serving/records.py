"""JSON shapes of endpoints and their versions, as the API returns them."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from jobs_bridge.orm import Endpoint, EndpointReplica, EndpointVersion
from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.router import LiveVersion


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).isoformat()


def desired(v: EndpointVersion, live: LiveVersion | None) -> int:
    """The replicas a version should have now: the autoscaler's count once it serves."""
    if live is None or live.state != "ready":
        return v.replicas
    return sum(1 for r in live.replicas if r.state not in ("stopping", "stopped"))


def version_json(v: EndpointVersion, owner: str, replicas: list[EndpointReplica], live: LiveVersion | None,
                 url: str) -> dict:
    live_replicas = {r.index: r for r in live.replicas} if live else {}
    items = []
    for row in sorted(replicas, key=lambda r: r.index):
        lr = live_replicas.get(row.index)
        items.append({"index": row.index, "state": lr.state if lr else "stopped", "ready": bool(lr and lr.ready),
                      "restarts": row.restarts, "in_flight": lr.in_flight + lr.outside if lr else 0,
                      "gpu_devices": json.loads(row.gpu_devices), "node": lr.node if lr else "",
                      "address": f"{lr.host}:{lr.port}" if lr and lr.node else ""})
    reason, _, tail = v.reason.partition("\n")  # a failed version's reason is followed by its log's tail
    stats = live.stats if live else VersionStats(v.id, v.stats)
    return {
        "number": v.number, "state": live.state if live else v.state, "reason": reason,
        "log_tail": tail.split("\n") if tail else [], "entry": v.entry, "project": f"{owner}/{v.project}", "snapshot": v.snapshot, "environment": v.environment, "image": v.image,
        "image_id": v.image_id, "resources": {"cpus": v.cpus, "memory": v.memory, "gpus": v.gpus},
        "replicas": {"desired": desired(v, live), "ready": sum(1 for i in items if i["ready"]), "items": items},
        "inputs": [{k: i[k] for k in ("source", "mount", "kind", "version_id")} for i in json.loads(v.inputs)],
        "health_path": v.health_path or "/_floyd/ready", "message": v.message, "created_by": v.created_by,
        "created_at": iso(v.created_at), "ready_at": iso(v.ready_at), "stopped_at": iso(v.stopped_at),
        "url": f"{url}v{v.number}/", "model": v.model_ref or None,
        "stats": stats.summary(),
        # Autoscaling, seen live: the last start from zero, why more replicas could not start, held requests.
        "cold_start_s": live.cold_start_s if live else None, "capped": live.capped if live else "",
        "waiting": live.waiting if live else 0,
    }


def endpoint_json(ep: Endpoint, url: str, serving: int | None, versions: list[dict], keys: int,
                  following: str | None = None) -> dict:
    return {
        "id": ep.id, "owner": ep.owner, "name": ep.name, "description": ep.description, "public": ep.public,
        "created_at": iso(ep.created_at), "url": url, "serving_version": serving, "active_keys": keys,
        "versions": versions, "following": following,
    }
