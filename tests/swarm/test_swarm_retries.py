"""Jobs whose Swarm task waits for a node, and jobs run again after a lost run (--retries), on a
real 3-node Swarm. No node has the label ``spare=yes`` until a test gives it: the environment
``spare`` then has nowhere to go, and Swarm says so."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform
from tests.support.swarm import NamespaceSwarm

# Resumes from its own checkpoint: the output directory is kept for the next attempt.
RESUMABLE = ('echo "on $(hostname)"; if [ -e /floyd/output/started ]; then echo resumed; exit 0; fi; '
             "touch /floyd/output/started; sleep 300")


def logs(user, job_id: str) -> str:
    return user.api("GET", f"jobs/{job_id}/logs").text


def label(swarm: NamespaceSwarm, node: str, add: bool) -> None:
    flag = ["--label-add", "spare=yes"] if add else ["--label-rm", "spare"]
    swarm.manager.docker("node", "update", *flag, node, check=add)


def wait_log(user, job_id: str, text: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in (out := logs(user, job_id)):
            return out
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not in the log of {job_id}: {logs(user, job_id)}")


def test_pending_task_shows_starting_with_swarms_reason(swarm: NamespaceSwarm, swarm_platform: Platform,
                                                        tmp_path: Path) -> None:
    user = swarm_platform.user("waiter")
    job = submit(user, "wait", {"a": b"pending-1"}, tmp_path, environment="spare", command='echo "on $(hostname)"')
    job_id = job["job"]["id"]
    try:
        deadline = time.monotonic() + 60
        record = user.api("GET", f"jobs/{job_id}").json()
        while "no suitable node" not in record["reason"] and time.monotonic() < deadline:
            assert record["state"] in ("queued", "starting"), record
            time.sleep(0.3)
            record = user.api("GET", f"jobs/{job_id}").json()
        assert record["state"] == "starting", record
        assert "no suitable node" in record["reason"] and "waiting for Docker Swarm" in record["reason"], record
        time.sleep(2)  # still waiting, never "running" while no node can take it
        assert user.api("GET", f"jobs/{job_id}").json()["state"] == "starting"
        page = requests.get(swarm_platform.url + f"services/floyd/jobs/{job_id}", headers=user.headers, timeout=30)
        assert "no suitable node" in page.text
        shown = user.cli("status", job_id).stdout
        assert "starting" in shown and "no suitable node" in " ".join(shown.split()), shown
        label(swarm, "node3", add=True)
        done = wait_state(user, job_id, {"succeeded", "failed", "lost"}, timeout=90)
        assert done["state"] == "succeeded" and done["reason"] == "", done
        assert "on node3" in logs(user, job_id)
        assert done["started_at"] is not None
    finally:
        label(swarm, "node3", add=False)


def test_lost_job_with_retries_runs_again_on_another_node(swarm: NamespaceSwarm, swarm_platform: Platform,
                                                          tmp_path: Path) -> None:
    user = swarm_platform.user("retrier")
    for node in ("node2", "node3"):
        label(swarm, node, add=True)
    killed = None
    try:
        job = submit(user, "retry", {"a": b"retries-1"}, tmp_path, environment="spare", command=RESUMABLE,
                     retries=1)["job"]
        assert job["retries"] == 1 and job["attempt"] == 1 and job["attempts"] == []
        first = wait_log(user, job["id"], "on node")
        where = "node2" if "on node2" in first else "node3"
        other = "node3" if where == "node2" else "node2"
        killed = swarm.node(where)
        killed.kill(signal.SIGKILL)
        done = wait_state(user, job["id"], {"succeeded", "failed", "lost", "stopped"}, timeout=120)
        text = logs(user, job["id"])
        assert done["state"] == "succeeded", (done, text)
        assert done["attempt"] == 2 and len(done["attempts"]) == 1, done
        lost = done["attempts"][0]
        assert lost["state"] == "lost" and f"node {where}" in lost["reason"] and "went away" in lost["reason"]
        assert "attempt 1 was lost" in text and "(attempt 2 of 2)" in text, text
        assert f"on {other}" in text and "resumed" in text, text
        page = requests.get(swarm_platform.url + f"services/floyd/jobs/{job['id']}", headers=user.headers, timeout=30)
        assert 'id="attempts"' in page.text and "went away" in page.text
        info = " ".join(user.cli("info", job["id"]).stdout.split())
        assert "Attempt 2 of at most 2" in info and "went away" in info, info
    finally:
        if killed is not None:
            swarm.restart_node(killed)
        for node in ("node2", "node3"):
            label(swarm, node, add=False)


def test_bad_retries_are_refused_and_nothing_is_queued(swarm_platform: Platform, tmp_path: Path) -> None:
    user = swarm_platform.user("badretry")
    job = submit(user, "bad", {"a": b"bad-retries-1"}, tmp_path, environment="base", command="true")["job"]
    for bad in (11, -1, "many", True):
        r = user.api("POST", "jobs", json={"project": "badretry/bad", "snapshot": job["snapshot"],
                                           "command": "true", "retries": bad})
        assert r.status_code == 422, (bad, r.text)
        assert "'retries' must be a whole number from 0 to 10" in r.json()["message"], r.text
    assert [j["number"] for j in user.api("GET", "jobs?project=bad").json()["items"]] == [1]
    done = wait_state(user, job["id"], {"succeeded", "failed", "lost"}, timeout=90)
    assert done["state"] == "succeeded" and done["retries"] == 0 and done["attempts"] == [], done
