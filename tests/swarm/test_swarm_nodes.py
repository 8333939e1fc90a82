"""``floyd admin nodes``: the swarm's nodes with their resources and work; drain and activate."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform, as_json
from tests.support.swarm import NamespaceSwarm
from tests.swarm.conftest import GPU_ID


def test_admin_lists_drains_and_activates_nodes(swarm: NamespaceSwarm, swarm_platform: Platform,
                                                tmp_path: Path) -> None:
    admin = swarm_platform.admin
    assert admin is not None
    data = as_json(admin.cli("admin", "nodes", "--json"))
    assert data["runtime"] == "swarm"
    nodes = {n["name"]: n for n in data["items"]}
    assert set(nodes) >= {"node1", "node2", "node3"}
    assert nodes["node2"]["gpus"] == [GPU_ID] and nodes["node2"]["gpus_total"] == 1
    assert nodes["node2"]["labels"] == {"gpu": "a100"} and nodes["node1"]["address"] == swarm.manager.address
    assert all(nodes[n]["storage"] == "ok" and nodes[n]["state"] == "ready" and nodes[n]["cpus"] > 0
               for n in ("node1", "node2", "node3"))
    page = requests.get(swarm_platform.url + "services/floyd/nodes", headers=admin.headers, timeout=30)
    assert page.status_code == 200 and 'data-node="node2"' in page.text and "gpu=a100" in page.text
    table = admin.cli("admin", "nodes").stdout
    assert "node2" in table and "GPUS FREE" in table and "1/1" in table
    # Drained: no new work lands there, so a job goes to the one active node.
    for name in ("node1", "node3"):
        admin.cli("admin", "nodes", "drain", name)
    try:
        assert {n["name"]: n["availability"] for n in as_json(admin.cli("admin", "nodes", "--json"))["items"]}[
            "node1"] == "drain"
        user = swarm_platform.user("drainee")
        job = submit(user, "drain", {"d": b"drain-1"}, tmp_path, environment="base",
                     command='echo "on $(hostname)"; sleep 3')["job"]
        wait_state(user, job["id"], {"running"}, timeout=60)
        deadline = time.monotonic() + 30
        while "on node2" not in user.api("GET", f"jobs/{job['id']}/logs").text and time.monotonic() < deadline:
            time.sleep(0.2)
        busy = {n["name"]: n for n in admin.api("GET", "nodes").json()["items"]}
        assert busy["node2"]["running_jobs"] == 1, busy["node2"]
        done = wait_state(user, job["id"], {"succeeded", "failed", "lost"}, timeout=60)
        assert done["state"] == "succeeded" and "on node2" in user.api("GET", f"jobs/{job['id']}/logs").text
    finally:
        for name in ("node1", "node3"):
            admin.cli("admin", "nodes", "activate", name)
    assert all(n["availability"] == "active" for n in admin.api("GET", "nodes").json()["items"])
    # Bad input and non-admins.
    r = admin.api("PATCH", "nodes/node1", json={"availability": "gone"})
    assert r.status_code == 400 and "active" in r.json()["message"]
    assert admin.api("PATCH", "nodes/node9", json={"availability": "drain"}).status_code == 404
    nobody = swarm_platform.user("not-admin")
    assert nobody.api("GET", "nodes").status_code == 403
    failed = nobody.cli("admin", "nodes", check=False)
    assert failed.returncode == 4 and "Only an admin" in failed.stderr
