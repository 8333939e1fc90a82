"""The swarm's nodes as an admin sees them (``floyd admin nodes``, the nodes page), and drain.

"Drain" here means what an admin of a job platform wants: no new work lands on the node and
running work finishes. Swarm's own ``drain`` stops running tasks (a one-shot job would end
half done), so a Floyd drain sets Swarm's ``pause``; ``active`` undoes it.
"""

from __future__ import annotations

from typing import Any

import docker

from jobs_bridge.errors import BadRequest, NotFound
from jobs_bridge.executors.contract import INSTANCE_LABEL, JOB_LABEL, REPLICA_LABEL, WORKSPACE_LABEL
from jobs_bridge.executors.swarm_probe import ENDED, root_label

TO_SWARM = {"active": "active", "drain": "pause"}
FROM_SWARM = {"active": "active", "pause": "drain", "drain": "drain (Swarm: running tasks stopped)"}


def generic_ids(resources: list[dict[str, Any]] | None, kind: str) -> list[str]:
    return [str(r["NamedResourceSpec"]["Value"]) for r in resources or []
            if (r.get("NamedResourceSpec") or {}).get("Kind") == kind]


def count_labelled(tasks: list[dict[str, Any]], label: str) -> int:
    """How many of ``tasks`` carry ``label`` (a job's, an endpoint replica's, a workspace's)."""
    return len([t for t in tasks if label in (t.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {})])


def node_json(node: dict[str, Any], tasks: list[dict[str, Any]], instance: str, gpu_kind: str,
              refused: dict[str, str]) -> dict[str, Any]:
    """One node with this platform's running work on it (jobs, endpoint replicas, workspaces) and its free GPUs."""
    desc, spec, status = node.get("Description", {}), node.get("Spec", {}), node.get("Status", {})
    name = desc.get("Hostname", node["ID"][:12])
    res = desc.get("Resources", {})
    gpus = generic_ids(res.get("GenericResources"), gpu_kind)
    here = [t for t in tasks if t.get("NodeID") == node["ID"]]
    used = {g for t in here for g in generic_ids(t.get("GenericResources") or t.get("AssignedGenericResources"),
                                                   gpu_kind)}
    ours = [t for t in here if (t.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {}).get(INSTANCE_LABEL)
            == instance]
    labels = spec.get("Labels") or {}
    return {
        "name": name, "id": node["ID"], "address": status.get("Addr", ""), "state": status.get("State", ""),
        "availability": FROM_SWARM.get(spec.get("Availability", ""), spec.get("Availability", "")),
        "role": spec.get("Role", ""), "cpus": res.get("NanoCPUs", 0) / 1e9, "memory": res.get("MemoryBytes", 0),
        "gpus_total": len(gpus), "gpus_free": len([g for g in gpus if g not in used]), "gpus": gpus,
        "labels": {k: v for k, v in labels.items() if not k.startswith("org.floyd.")},
        "storage": labels.get(root_label(instance), "not probed yet"), "storage_problem": refused.get(name, ""),
        "running_jobs": count_labelled(ours, JOB_LABEL),
        "running_replicas": count_labelled(ours, REPLICA_LABEL),
        "running_workspaces": count_labelled(ours, WORKSPACE_LABEL),
        "running_tasks": len(here),
    }


def list_nodes(client: docker.DockerClient, instance: str, gpu_kind: str, refused: dict[str, str]) -> list[dict]:
    tasks = [t for t in client.api.tasks(filters={"desired-state": "running"})
             if t.get("NodeID") and t.get("Status", {}).get("State") not in ENDED]
    nodes = [node_json(n, tasks, instance, gpu_kind, refused) for n in client.api.nodes()]
    return sorted(nodes, key=lambda n: n["name"])


def set_availability(client: docker.DockerClient, name: str, availability: object) -> str:
    """Returns the node's id; 400 for an availability other than active/drain, 404 for no such node."""
    if availability not in TO_SWARM:
        raise BadRequest(f"'availability' must be 'active' or 'drain' (no new work; running work finishes), not "
                         f"{availability!r}.")
    matches = [n for n in client.api.nodes() if n.get("Description", {}).get("Hostname") == name or n["ID"] == name]
    if not matches:
        raise NotFound(f"No swarm node {name!r}; `floyd admin nodes` lists them.")
    node = matches[0]
    spec = {**node["Spec"], "Availability": TO_SWARM[str(availability)]}
    client.api.update_node(node["ID"], node["Version"]["Index"], spec)
    return str(node["ID"])
