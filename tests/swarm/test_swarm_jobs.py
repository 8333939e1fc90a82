"""Jobs on a real 3-node Swarm (engines in network namespaces on this machine): placement by
node labels with data written on another node, a node lost under a job, the bridge killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform
from tests.support.swarm import NamespaceSwarm

WHERE = 'echo "on $(hostname)"'


def logs(user, job_id: str) -> str:
    return user.api("GET", f"jobs/{job_id}/logs").text


def test_labelled_node_reads_data_written_on_another(swarm: NamespaceSwarm, swarm_platform: Platform,
                                                     tmp_path: Path) -> None:
    user = swarm_platform.user("placer")
    # Pinned to disk=ssd (node3 only): the data is written there.
    writer = submit(user, "place", {"w.txt": b"swarm-placement-bytes-1\n"}, tmp_path, environment="ssd",
                    command=f'{WHERE}; cp w.txt /floyd/output/data.txt')["job"]
    done = wait_state(user, writer["id"], {"succeeded", "failed", "lost"}, timeout=90)
    assert done["state"] == "succeeded", (done, logs(user, writer["id"]))
    assert "on node3" in logs(user, writer["id"])
    user.api("POST", "datasets", json={"name": "placed"})
    r = user.api("POST", "datasets/placer/placed/from-job", json={"job": writer["id"]})
    assert r.status_code == 201, r.text
    # Pinned to gpu=a100 (node2 only); it reads the version through its read-only mount.
    reader = submit(user, "place", {"r.txt": b"r"}, tmp_path, environment="a100",
                    command=f"{WHERE}; cat /floyd/input/d/data.txt; touch /floyd/input/d/x || echo read-only",
                    inputs=[{"source": "placed:1", "mount": "d"}])["job"]
    done = wait_state(user, reader["id"], {"succeeded", "failed", "lost"}, timeout=90)
    text = logs(user, reader["id"])
    assert done["state"] == "succeeded", (done, text)
    assert "on node2" in text and "swarm-placement-bytes-1" in text and "read-only" in text
    # Nothing is left on the swarm once jobs ended.
    assert swarm.manager.docker("service", "ls", "-q").stdout.strip() == ""


def test_node_lost_under_a_job(swarm: NamespaceSwarm, swarm_platform: Platform, tmp_path: Path) -> None:
    user = swarm_platform.user("loser")
    job = submit(user, "lose", {"a": b"lost-1"}, tmp_path, environment="a100",
                 command=f"{WHERE}; sleep 300")["job"]
    wait_state(user, job["id"], {"running"}, timeout=90)
    deadline = time.monotonic() + 60
    while "on node2" not in logs(user, job["id"]) and time.monotonic() < deadline:
        time.sleep(0.3)
    node = swarm.node("node2")
    node.kill(signal.SIGKILL)
    try:
        lost = wait_state(user, job["id"], {"lost", "failed", "succeeded"}, timeout=60)
        assert lost["state"] == "lost", lost
        assert "node node2" in lost["reason"] and "went away" in lost["reason"], lost["reason"]
    finally:
        swarm.restart_node(node)


def test_bridge_killed_adopts_swarm_jobs(swarm: NamespaceSwarm, swarm_platform: Platform, tmp_path: Path) -> None:
    user = swarm_platform.user("adopter")
    count = "for i in $(seq 0 39); do echo line $i; sleep 0.1; done"
    job = submit(user, "adopt", {"c": b"adopt-1"}, tmp_path, environment="base", command=count)["job"]
    wait_state(user, job["id"], {"running"}, timeout=90)
    time.sleep(1)
    os.kill(swarm_platform.bridge_pid(), signal.SIGKILL)
    swarm_platform.wait_bridge(90)
    done = wait_state(user, job["id"], {"succeeded", "failed", "lost"}, timeout=90)
    assert done["state"] == "succeeded", done
    lines = [ln for ln in logs(user, job["id"]).splitlines() if ln.startswith("line ")]
    assert lines == [f"line {i}" for i in range(40)]  # nothing lost, nothing twice
