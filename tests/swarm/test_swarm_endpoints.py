"""Endpoint replicas as Swarm tasks on a real 3-node swarm: spread over the nodes, a rolling
deploy under continuous requests, a node lost under a replica, the bridge killed."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jobs_bridge.executors.contract import ENDPOINT_LABEL, REPLICA_LABEL
from tests.support.platform import Platform, User
from tests.support.serving import deploy, deploy_ready, wait_version
from tests.support.swarm import NamespaceSwarm
from tests.support.swarm_serving import build_serve_image, lose_node, who_files
from tests.support.traffic import Traffic

ENDPOINT_CONFIG = """
c.SwarmExecutor.lost_after = 3
c.BridgeApp.environments = [
    {{"name": "serve", "image": "{image}", "cpus": 0.2, "memory": "192M"}},
    {{"name": "serve-ssd", "image": "{image}", "cpus": 0.2, "memory": "192M", "node_labels": {{"disk": "ssd"}}}},
    {{"name": "ssd-most", "image": "{image}", "cpus": {most}, "memory": "192M", "node_labels": {{"disk": "ssd"}}}},
    {{"name": "serve-wide", "image": "{image}", "cpus": {wide}, "memory": "192M"}},
]
"""
# Each node's engine reports the machine's CPUs: "ssd-most" leaves node3 too little for a
# "serve-wide" replica, of which two fit on any other node.
CPUS = len(os.sched_getaffinity(0))
MOST, WIDE = round(0.6 * CPUS, 2), round(0.45 * CPUS, 2)


@pytest.fixture(scope="module")
def ep_platform(swarm: NamespaceSwarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of its own on the session's swarm, with an environment that can serve."""
    image = build_serve_image()
    swarm.load_images([image])
    p = Platform.create(tmp_path_factory.mktemp("swarm-endpoints"), bridge_config=ENDPOINT_CONFIG.format(image=image, most=MOST, wide=WIDE),
                        extra_env={"FLOYD_JOB_EXECUTOR": "swarm", "FLOYD_SWARM_MANAGER": swarm.manager.url})
    p.start()
    yield p
    p.stop()
    # Replicas outlive their bridge by design; the next tests expect a swarm with no services.
    ours = swarm.manager.docker("service", "ls", "-q", "--filter", f"label={REPLICA_LABEL}").stdout.split()
    if ours:
        swarm.manager.docker("service", "rm", *ours, check=False)


@pytest.fixture(scope="module")
def owner(ep_platform: Platform) -> User:
    return ep_platform.user("spreader")


def replicas(user: User, name: str, number: int) -> list[dict]:
    v = user.api("GET", f"endpoints/{user.name}/{name}/versions/{number}").json()
    return list(v["replicas"]["items"])


def wait_replicas(user: User, name: str, number: int, ok, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    items: list[dict] = []
    while time.monotonic() < deadline:
        items = replicas(user, name, number)
        if ok(items):
            return items
        time.sleep(0.3)
    raise AssertionError(f"{name} v{number}: replicas never got there: {items}\n{user.platform.log_tail(60)}")


def test_three_replicas_on_three_nodes_and_a_rolling_deploy(swarm: NamespaceSwarm, owner: User,
                                                           tmp_path: Path) -> None:
    v1 = deploy_ready(owner, "spread", who_files("one"), tmp_path, environment="serve", replicas=3)
    items = v1["replicas"]["items"]
    assert sorted(i["node"] for i in items) == ["node1", "node2", "node3"], items
    # The admin's nodes view counts them where they run.
    nodes = owner.platform.admin.api("GET", "nodes").json()["items"]
    assert all(n["running_replicas"] >= 1 for n in nodes), nodes
    # Each replica listens at its node's address; a direct call without the version's token is refused.
    for item in items:
        host = item["address"].rpartition(":")[0]
        assert host == swarm.node(item["node"]).address, item
        direct = requests.get(f"http://{item['address']}/", timeout=10)
        assert direct.status_code in (401, 403), (item, direct.status_code, direct.text)
    # Every replica's own output reaches the version's log, whichever node it runs on (a task's
    # output is followed on its node's engine, so it may arrive after the version is ready).
    wanted = [line for item in items for line in (
        f"[floyd] r{item['index']}: on node {item['node']} ({item['address']})",
        f"[r{item['index']}] [floyd] serving app.py")]
    deadline = time.monotonic() + 30
    while True:
        log = owner.api("GET", f"endpoints/{owner.name}/spread/versions/1/logs").text
        if all(line in log for line in wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [line for line in wanted if line not in log] == [], log
    traffic = Traffic(owner, "spread", "/", pause=0.02).start()
    try:
        traffic.wait_ok_after(time.monotonic(), 30)
        v2 = deploy(owner, "spread", who_files("two"), tmp_path, project="spread-code", environment="serve",
                    replicas=3)
        assert wait_version(owner, "spread", v2["number"])["state"] == "ready"
        traffic.wait_ok_after(time.monotonic() + 1, 30)
    finally:
        traffic.stop()
    bodies = [a.body.split()[0] for a in traffic.answers if a.status == 200]
    assert traffic.failures() == [], traffic.counts()
    assert bodies[0] == "one" and bodies[-1] == "two", bodies[-5:]
    assert {a.body.split()[1] for a in traffic.answers} == {"node1", "node2", "node3"}


def test_replicas_pinned_by_their_environments_node_labels(swarm: NamespaceSwarm, owner: User,
                                                         tmp_path: Path) -> None:
    v = deploy_ready(owner, "pinned", who_files("p"), tmp_path, environment="serve-ssd", replicas=2)
    items = v["replicas"]["items"]
    assert [i["node"] for i in items] == ["node3", "node3"], items  # disk=ssd: node3 only
    assert len({i["address"] for i in items}) == 2, items  # two ports on one node
    ids = swarm.manager.docker("service", "ls", "-q", "--filter", f"label={ENDPOINT_LABEL}").stdout.split()
    services = json.loads(swarm.manager.docker("service", "inspect", *ids).stdout)
    pinned = [s["Spec"]["TaskTemplate"] for s in services
              if s["Spec"]["Labels"][ENDPOINT_LABEL].startswith(f"{owner.name}/pinned/")]
    assert len(pinned) == 2, services
    for task in pinned:  # placement, reservations and limits as a job's: Swarm places by them
        assert "node.labels.disk==ssd" in task["Placement"]["Constraints"], task
        assert task["Resources"]["Reservations"]["NanoCPUs"] == 200_000_000, task
        assert task["Resources"]["Limits"]["MemoryBytes"] == 192 << 20, task
    assert owner.api("POST", f"endpoints/{owner.name}/pinned/versions/1/stop").status_code == 200


def test_replicas_of_a_version_spread_over_the_nodes_when_one_is_busy(owner: User, tmp_path: Path) -> None:
    # Two replicas of another endpoint make node3 the busiest node. Each replica is a service of its
    # own, so Swarm alone would put all three of the next version's on node1 and node2.
    deploy_ready(owner, "crowd", who_files("c"), tmp_path, environment="serve-ssd", replicas=2)
    v = deploy_ready(owner, "evenly", who_files("e"), tmp_path, environment="serve", replicas=3)
    assert sorted(i["node"] for i in v["replicas"]["items"]) == ["node1", "node2", "node3"], v["replicas"]
    for name in ("crowd", "evenly"):
        assert owner.api("POST", f"endpoints/{owner.name}/{name}/versions/1/stop").status_code == 200


def test_a_replica_shares_a_node_when_no_other_has_room(owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "hog", who_files("h"), tmp_path, environment="ssd-most", replicas=1)  # node3 full
    v = deploy_ready(owner, "squeezed", who_files("s"), tmp_path, environment="serve-wide", replicas=3)
    nodes = sorted(i["node"] for i in v["replicas"]["items"])
    # The third was kept off node1 and node2 first, then allowed back (spread_grace): node3 has no room.
    assert len(nodes) == 3 and "node3" not in nodes and len(set(nodes)) == 2, v["replicas"]
    for name in ("hog", "squeezed"):
        assert owner.api("POST", f"endpoints/{owner.name}/{name}/versions/1/stop").status_code == 200


def test_node_lost_under_a_replica(swarm: NamespaceSwarm, owner: User, tmp_path: Path) -> None:
    deploy_ready(owner, "survivor", who_files("s"), tmp_path, environment="serve", replicas=2)
    before = replicas(owner, "survivor", 1)
    victim = next(i for i in before if i["node"] != "node1")  # node1 is the manager: the swarm lives there
    node = swarm.node(victim["node"])
    traffic = Traffic(owner, "survivor", "/", pause=0.02).start()
    try:
        traffic.wait_ok_after(time.monotonic(), 30)
        lose_node(node)
        lost_at = time.monotonic()
        with pytest.raises(requests.ConnectionError):  # the machine's replica is gone, not just its engine
            requests.get(f"http://{victim['address']}/", timeout=5)
        after = wait_replicas(owner, "survivor", 1, lambda items: all(
            i["ready"] and i["node"] and i["node"] != node.name for i in items))
        traffic.wait_ok_after(time.monotonic(), 30)
    finally:
        traffic.stop()
        swarm.restart_node(node)
    replaced = next(i for i in after if i["index"] == victim["index"])
    assert replaced["restarts"] == victim["restarts"] + 1, (victim, replaced)
    served_after = [a for a in traffic.answers if a.started > lost_at and a.status == 200]
    assert served_after, traffic.counts()
    # The goal is 0: the proxy retries a request whose replica refused the connection on another.
    print(f"failed requests while {node.name} was lost: {len(traffic.failures())} of {len(traffic.answers)}")
    assert traffic.failures() == [], traffic.counts()
    log = owner.api("GET", f"endpoints/{owner.name}/survivor/versions/1/logs").text
    assert f"node {node.name}" in log and "went away" in log, log[-2000:]


def test_bridge_killed_adopts_replicas_on_every_node(swarm: NamespaceSwarm, ep_platform: Platform, owner: User,
                                                    tmp_path: Path) -> None:
    deploy_ready(owner, "adopted", who_files("a"), tmp_path, environment="serve", replicas=3)
    before = wait_replicas(owner, "adopted", 1, lambda items: all(i["ready"] for i in items))
    services = set(swarm.manager.docker("service", "ls", "-q").stdout.split())
    os.kill(ep_platform.bridge_pid(), signal.SIGKILL)
    ep_platform.wait_bridge(90)
    after = wait_replicas(owner, "adopted", 1, lambda items: all(i["ready"] for i in items))
    assert [(i["node"], i["address"], i["restarts"]) for i in after] == \
        [(i["node"], i["address"], i["restarts"]) for i in before]
    assert set(swarm.manager.docker("service", "ls", "-q").stdout.split()) == services  # adopted, none replaced
    traffic = Traffic(owner, "adopted", "/", pause=0.02).start()
    try:
        traffic.wait_ok_after(time.monotonic(), 30)
        time.sleep(1)
    finally:
        traffic.stop()
    assert traffic.failures() == [], traffic.counts()
