"""Proving that every swarm node sees the same FLOYD_ROOT, before jobs land there.

The bridge writes a fresh token under its root; a ``global-job`` service (one task per node)
mounts the root read-only and prints what it reads. A node whose task cannot mount the path, or
reads another token (another filesystem at the same path), is *refused*: its node label
``org.floyd.root-<instance>`` says ``refused`` and the swarm runtime's jobs are constrained to
``ok`` nodes. A node that joins later has no label, so it gets no job until a probe passed.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.types import ContainerSpec, RestartPolicy, ServiceMode, TaskTemplate
from docker.types import Mount as DockerMount

from jobs_bridge.executors.base import LineSplitter
from jobs_bridge.executors.contract import INSTANCE_LABEL

log = logging.getLogger("jobs_bridge.swarm")

PROBE_TARGET = "/floyd-root"
PROBE_LABEL = "org.floyd.storage-probe"
ENDED = ("complete", "failed", "shutdown", "rejected", "orphaned", "remove")  # a Swarm task's last states


@dataclass
class ProbeResult:
    node_id: str
    name: str
    problem: str  # "" when the node sees the root


def root_label(instance: str) -> str:
    return f"org.floyd.root-{instance}"


def needs_probe(nodes: list[dict[str, Any]], instance: str) -> bool:
    """A ready node that no probe of this platform has judged yet (it joined since)."""
    return any(n.get("Status", {}).get("State") == "ready" and root_label(instance) not in (n["Spec"].get("Labels") or {})
               for n in nodes)


class StorageProbe:
    def __init__(self, client: docker.DockerClient, root: Path, token_file: Path, instance: str, image: str,
                 timeout: float = 60) -> None:
        self.client = client
        self.root = root
        self.token_file = token_file
        self.instance = instance
        self.image = image
        self.timeout = timeout

    def run(self) -> list[ProbeResult]:
        """Probe every ready node, label each ok or refused; returns the results (refusals logged)."""
        token = secrets.token_hex(16)
        self.token_file.write_text(token + "\n")
        self.token_file.chmod(0o644)
        nodes = {n["ID"]: n for n in self.client.api.nodes() if n.get("Status", {}).get("State") == "ready"}
        service = self._create()
        try:
            tasks = self._wait(service, len(nodes))
            seen = self._read(service)
        finally:
            try:
                self.client.api.remove_service(service)
            except NotFound:
                pass
        results = [self._judge(node, tasks.get(nid), seen.get(nid), token) for nid, node in nodes.items()]
        for r in results:
            self._label(r)
        return results

    def _create(self) -> str:
        container = ContainerSpec(
            self.image, ["sh", "-c", f'echo "probe $FLOYD_PROBE_NODE $(cat {PROBE_TARGET}/{self.token_file.name})"'],
            env={"FLOYD_PROBE_NODE": "{{.Node.ID}}"}, user="0:0",  # only reads, through a read-only mount
            mounts=[DockerMount(PROBE_TARGET, str(self.root), type="bind", read_only=True)])
        template = TaskTemplate(container, restart_policy=RestartPolicy(condition="none"), networks=["host"])
        created = self.client.api.create_service(template, name=f"floyd-{self.instance}-probe-{secrets.token_hex(3)}",
                                                 labels={INSTANCE_LABEL: self.instance, PROBE_LABEL: "1"},
                                                 mode=ServiceMode("global-job"))
        return str(created["ID"])

    def _wait(self, service: str, count: int) -> dict[str, dict[str, Any]]:
        """node id → its task, once every node's task ended (or the timeout passed)."""
        deadline = time.monotonic() + self.timeout
        while True:
            tasks = {t["NodeID"]: t for t in self.client.api.tasks(filters={"service": service}) if t.get("NodeID")}
            ended = [t for t in tasks.values() if t.get("Status", {}).get("State") in ENDED]
            if (len(ended) >= count and len(tasks) >= count) or time.monotonic() > deadline:
                return tasks
            time.sleep(0.3)

    def _read(self, service: str) -> dict[str, str]:
        try:
            data = b"".join(self.client.api.service_logs(service, stdout=True, stderr=True, follow=False))
        except APIError:
            return {}
        split = LineSplitter(0)
        seen = {}
        for line in split.feed(data) + split.close():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "probe":
                seen[parts[1]] = parts[2] if len(parts) > 2 else ""
        return seen

    def _judge(self, node: dict[str, Any], task: dict[str, Any] | None, read: str | None, token: str) -> ProbeResult:
        name = node.get("Description", {}).get("Hostname", node["ID"][:12])
        fix = "mount the shared FLOYD_ROOT at the same path there (docs/admin.md, 'Several machines')"
        if read == token:
            return ProbeResult(node["ID"], name, "")
        status = (task or {}).get("Status", {})
        err = status.get("Err", "")
        if "bind source path does not exist" in err:
            problem = f"node {name} does not see the storage root {self.root} (the path does not exist there): {fix}"
        elif err:
            problem = f"node {name} could not run the storage probe for {self.root}: {err}"
        elif task is None or status.get("State") not in ENDED:
            problem = f"node {name} did not run the storage probe for {self.root} within {self.timeout:.0f} s"
        else:
            problem = (f"node {name} has a {self.root}, but not the bridge's (the probe token "
                       f"{self.token_file.name} written there is missing): {fix}")
        return ProbeResult(node["ID"], name, problem)

    def _label(self, result: ProbeResult) -> None:
        node = self.client.api.inspect_node(result.node_id)
        spec = dict(node["Spec"])
        spec["Labels"] = {**(spec.get("Labels") or {}), root_label(self.instance): "refused" if result.problem else "ok"}
        self.client.api.update_node(result.node_id, node["Version"]["Index"], spec)
        if result.problem:
            log.warning("Swarm node refused: %s", result.problem)
        else:
            log.info("Swarm node %s sees the storage root %s", result.name, self.root)
