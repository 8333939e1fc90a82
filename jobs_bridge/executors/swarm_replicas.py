"""Endpoint replicas on a Docker Swarm: what differs from a job service.

A replica attempt is a one-task service like a job (the same ``service_spec`` from the
contract's RunSpec: reservations, limits, GPUs as generic resources, node-label constraints,
host networking, never restarted by Swarm), because the bridge's replica lifecycle restarts it
itself, on whichever node Swarm picks then. What a swarm adds: the port is chosen before the
node is known, so it comes from a range the admin keeps free on every node; and the address the
proxy connects to is the node's, learnt once Swarm placed the task.

Swarm spreads the tasks of one service over the nodes, but each replica is a service of its own,
so Swarm alone may put two replicas of a version on one node while another stands idle (and one
lost node then takes both). So a replica is first kept off the nodes that already run one of its
version's (``node.id!=`` constraints) while another node could take it, and may share a node only
when no other one placed it within ``spread_grace`` seconds (resources taken, labels).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import docker
from traitlets import Float, Instance, Unicode, validate

from jobs_bridge.executors.base import Executor, ExecutorError, FoundReplica, RunSpec
from jobs_bridge.executors.contract import INSTANCE_LABEL, REPLICA_LABEL
from jobs_bridge.executors.docker import engine
from jobs_bridge.executors.swarm_probe import ENDED, root_label

PLACED = ("assigned", "accepted", "preparing", "ready", "starting", "running")
AWAY = "node.id!="  # the constraints that spread a version's replicas


def usable(node: dict[str, Any], wanted: dict[str, str], root_ok: str) -> bool:
    """A node that could take a replica: ready, active, its storage probe passed, the labels of
    the replica's environment."""
    labels = node.get("Spec", {}).get("Labels") or {}
    return (node.get("Status", {}).get("State") == "ready" and node.get("Spec", {}).get("Availability") == "active"
            and labels.get(root_ok) == "ok" and all(labels.get(k) == v for k, v in wanted.items()))


def replica_service_name(spec: RunSpec, instance: str) -> str:
    """Short and unique (Swarm allows 63 characters): the version id, the replica, the attempt."""
    _, _, version, index, attempt = spec.name.split("/")
    return f"floyd-{instance}-ep-{spec.job_id}-{version}-{index}-{attempt}"


def parse_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(text)
    lo, hi = int(low), int(high)
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError(text)
    return lo, hi


def listen_port(service: dict[str, Any]) -> int | None:
    """The ``--port`` a replica service was started with."""
    container = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    args = [*(container.get("Command") or []), *(container.get("Args") or [])]
    for flag, value in zip(args, args[1:], strict=False):
        if flag == "--port" and str(value).isdigit():
            return int(value)
    return None


def node_address(node: dict[str, Any]) -> str:
    """The address other machines reach a node at. A manager may report 0.0.0.0 as its
    ``Status.Addr``; its ``ManagerStatus.Addr`` (host:2377) has the real one then."""
    addr = str(node.get("Status", {}).get("Addr", ""))
    if addr in ("", "0.0.0.0"):
        addr = str(node.get("ManagerStatus", {}).get("Addr", "")).rpartition(":")[0] or addr
    return addr


class SwarmReplicas(Executor):
    """The replica half of SwarmExecutor (mixed in before DockerExecutor); ``self.client`` is
    the manager's engine."""

    client: docker.DockerClient
    # The last ports handed out: replicas that start together are not listed as services yet.
    given = Instance(deque, args=([], 64))

    replica_ports = Unicode(
        "20000-29999", help="Ports an endpoint replica may listen on, LOW-HIGH (default 20000-29999). Replicas use "
        "host networking on their node and the port is chosen before Swarm picks the node, so keep this range free "
        "on every node (a replica whose port is taken there exits and is started again on another port).",
    ).tag(config=True)
    place_timeout = Float(
        60.0, help="Seconds a replica may wait for Swarm to place it on a node (free CPUs, memory, GPUs, matching "
        "labels) before its start fails with Swarm's reason (default 60).",
    ).tag(config=True)

    spread_grace = Float(
        3.0, help="Seconds a replica waits for a node that runs no other replica of its version before it may "
        "share one (default 3). Replicas of a version are spread over the nodes, so that one lost node takes as "
        "few of them as possible; 0 lets Swarm alone choose.",
    ).tag(config=True)

    @validate("replica_ports")
    def _check_ports(self, proposal: dict[str, Any]) -> str:
        try:
            parse_range(proposal["value"])
        except ValueError:
            raise ValueError(f"c.SwarmExecutor.replica_ports = {proposal['value']!r}: give a range of ports "
                             "LOW-HIGH between 1024 and 65535, e.g. '20000-29999'.") from None
        return str(proposal["value"])

    def replica_address(self, name: str) -> tuple[str, str, int]:
        """Any address of its node (unknown until placed); the connect host comes from ``replica_placement``."""
        return "0.0.0.0", "", 0

    def replica_services(self) -> list[dict[str, Any]]:
        with engine():
            services: list[dict[str, Any]] = self.client.api.services(
                filters={"label": [f"{INSTANCE_LABEL}={self.instance}", REPLICA_LABEL]})
        return services

    def free_port(self) -> int:
        """A port of the range that none of this platform's replicas was given."""
        low, high = parse_range(self.replica_ports)
        taken = {listen_port(s) for s in self.replica_services()} | set(self.given)
        free = [p for p in range(low, high + 1) if p not in taken]
        if not free:
            raise ExecutorError(f"Every port of c.SwarmExecutor.replica_ports ({self.replica_ports}) is given to a "
                                "replica: widen the range.")
        port = random.choice(free)
        self.given.append(port)
        return port

    def spread_away(self, spec: RunSpec, wanted: dict[str, str]) -> list[str]:
        """Constraints keeping a replica off the nodes that run one of its version's already, while
        a node without one could take it (GPU replicas go where their leased GPUs are)."""
        if self.spread_grace <= 0 or spec.gpu_devices:
            return []
        version = str(spec.job_id)  # a replica's job_id is its version's id (contract.identity_labels)
        siblings = [svc["ID"] for svc in self.replica_services()
                    if svc["Spec"]["Labels"][REPLICA_LABEL].partition("/")[0] == version]
        if not siblings:
            return []
        deadline = time.monotonic() + 3.0  # a sibling started a moment ago: Swarm places it within a second
        while True:
            with engine():
                tasks = self.client.api.tasks(filters={"service": siblings, "desired-state": "running"})
            if all(t.get("NodeID") for t in tasks) or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        with engine():
            nodes = self.client.api.nodes()
        busy = {str(t["NodeID"]) for t in tasks if t.get("NodeID") and t.get("Status", {}).get("State") in PLACED}
        free = {str(n["ID"]) for n in nodes if usable(n, wanted, root_label(self.instance))} - busy
        return [f"{AWAY}{node_id}" for node_id in sorted(busy)] if free else []

    def share_nodes(self, handle: str) -> None:
        """Drop a waiting replica's spreading constraints: it may go where another replica runs."""
        with engine():
            svc = self.client.api.inspect_service(handle)
            template = svc["Spec"]["TaskTemplate"]
            placement = template.get("Placement") or {}
            kept = [c for c in placement.get("Constraints") or [] if not c.startswith(AWAY)]
            if kept == (placement.get("Constraints") or []):
                return
            template["Placement"] = {**placement, "Constraints": kept}
            self.client.api.update_service(handle, svc["Version"]["Index"], task_template=template,
                                           fetch_current_spec=True)

    def replica_placement(self, handle: str, connect: str) -> tuple[str, str]:
        """Wait until Swarm placed the replica's task; (its node's address, the node's name)."""
        began = time.monotonic()
        deadline, spread = began + self.place_timeout, self.spread_grace > 0
        delay, why = 0.05, ""
        while True:
            with engine():
                tasks = self.client.api.tasks(filters={"service": handle})
            task: dict[str, Any] = max(tasks, key=lambda t: str(t.get("CreatedAt", ""))) if tasks else {}
            status = task.get("Status", {})
            state, node_id = status.get("State", ""), task.get("NodeID", "")
            if node_id and (state in PLACED or state in ENDED):  # ended: wait() reports how
                with engine():
                    node = self.client.api.inspect_node(node_id)
                return node_address(node), str(node.get("Description", {}).get("Hostname", node_id[:12]))
            why = status.get("Err") or status.get("Message") or why
            if spread and time.monotonic() - began >= self.spread_grace:
                spread = False
                self.share_nodes(handle)
            if time.monotonic() >= deadline:
                raise ExecutorError(f"No swarm node took the replica in {self.place_timeout:g} s: "
                                    f"{why or 'no node has the CPUs, memory, GPUs or labels it needs'}.")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def find_replicas(self) -> Iterator[FoundReplica]:
        found = []
        for svc in self.replica_services():
            version, _, index = svc["Spec"]["Labels"][REPLICA_LABEL].partition("/")
            with engine():
                tasks = self.client.api.tasks(filters={"service": svc["ID"]})
            newest = max(tasks, key=lambda t: str(t.get("CreatedAt", ""))) if tasks else {}
            running = newest.get("Status", {}).get("State", "new") not in ENDED
            found.append(FoundReplica(int(version), int(index), svc["ID"], running))
        yield from found
