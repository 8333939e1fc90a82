"""The storage probe: every node proves it sees the bridge's FLOYD_ROOT before jobs land there;
a node that joins without the shared mount is refused with a message naming it and the path."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform
from tests.support.swarm import NamespaceSwarm


def node_labels(swarm: NamespaceSwarm, name: str) -> dict[str, str]:
    return json.loads(swarm.manager.docker("node", "inspect", name, "--format", "{{json .Spec.Labels}}").stdout)


def test_node_without_the_shared_root_is_refused(swarm: NamespaceSwarm, swarm_platform: Platform,
                                                 tmp_path: Path) -> None:
    label = f"org.floyd.root-{swarm_platform.instance}"
    assert all(node_labels(swarm, n.name).get(label) == "ok" for n in swarm.nodes[:3])
    node = swarm.add_node(hide=[str(swarm_platform.root.parent)])  # its FLOYD_ROOT path does not exist
    try:
        user = swarm_platform.user("prober")
        job = submit(user, "probe", {"p": b"probe-1"}, tmp_path, environment="base",
                     command='echo "on $(hostname)"; ls /floyd/code')["job"]
        done = wait_state(user, job["id"], {"succeeded", "failed", "lost"}, timeout=90)
        text = user.api("GET", f"jobs/{job['id']}/logs").text
        assert done["state"] == "succeeded", (done, text)
        assert node.name not in text
        assert node_labels(swarm, node.name).get(label) == "refused"
        log = swarm_platform.log_tail(400)
        assert f"{node.name} does not see the storage root {swarm_platform.root}" in log, log
    finally:
        swarm.remove_node(node)
