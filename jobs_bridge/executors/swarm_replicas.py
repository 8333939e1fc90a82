"""Endpoint replicas on a Docker Swarm: what differs from a job service.

A replica attempt is a one-task service like a job (the same ``service_spec`` from the
contract's RunSpec: reservations, limits, GPUs as generic resources, node-label constraints,
host networking, never restarted by Swarm), because the bridge's replica lifecycle restarts it
itself, on whichever node Swarm picks then. What a swarm adds: the port is chosen before the
node is known, so it comes from a range the admin keeps free on every node; and the address the
proxy connects to is the node's, learnt once Swarm placed the task.
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
from jobs_bridge.executors.swarm_probe import ENDED

PLACED = ("assigned", "accepted", "preparing", "ready", "starting", "running")


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

    def replica_placement(self, handle: str, connect: str) -> tuple[str, str]:
        """Wait until Swarm placed the replica's task; (its node's address, the node's name)."""
        deadline = time.monotonic() + self.place_timeout
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
