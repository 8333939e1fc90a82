"""The Docker engine is stopped and started again while jobs run (docker executor).

Promised (docs/admin.md, "Failure modes"): the bridge goes on answering while the engine is
down (a job submit is a 503 "Docker engine unavailable"); each running job is then either taken
back (its container still runs: ``live-restore``) or recorded ``lost`` with a reason naming the
engine — never left ``running``; new jobs run once the engine is back.

CAUTION: this restarts the engine every test on this machine shares (scripts/ensure-docker.sh
--stop, then the same script starts it again, always, in a ``finally``). Their containers stop
with it. Run it on purpose, not in a loop.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.jobs import submit, wait_state
from tests.support.platform import REPO, TEST_BRIDGE_CONFIG, Platform

ENSURE = [str(REPO / "scripts" / "ensure-docker.sh")]
COUNTER = {"count.py": b"import time\nfor i in range(600):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)\n"}
ENDED = {"lost", "succeeded", "failed", "stopped"}


@pytest.fixture
def own_platform(tmp_path: Path, workspace_image: str) -> Iterator[Platform]:
    p = Platform.create(tmp_path, bridge_config=TEST_BRIDGE_CONFIG)
    try:
        p.start()
        yield p
    finally:
        p.stop()
        client = docker.from_env(timeout=30)
        for c in client.containers.list(all=True, filters={"label": f"org.floyd.instance={p.instance}"}):
            c.remove(force=True)


def engine(*args: str) -> str:
    proc = subprocess.run(["bash", *ENSURE, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, f"ensure-docker.sh {' '.join(args)} failed:\n{proc.stderr}"
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def test_engine_restarted_while_jobs_run(own_platform: Platform, tmp_path: Path) -> None:
    if not Path("/run/floyd-docker.pid").exists():
        pytest.skip("the engine was not started by scripts/ensure-docker.sh: this test does not stop someone else's")
    alice = own_platform.user("alice")
    jobs = [submit(alice, "engine", COUNTER, tmp_path, command="python count.py")["job"] for _ in range(2)]
    for job in jobs:
        wait_state(alice, job["id"], {"running"}, timeout=90)
    time.sleep(1.5)
    snapshot = jobs[0]["snapshot"]
    try:
        engine("--stop")
        time.sleep(1)
        for job in jobs:  # the bridge answers; a job is running (its fate unknown yet) or lost to the engine
            r = alice.api("GET", f"jobs/{job['id']}", timeout=30)
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "running" or "Docker engine" in r.json()["reason"], r.text
        r = alice.api("POST", "jobs", json={"project": "alice/engine", "snapshot": snapshot,
                                            "command": "python count.py"}, timeout=30)
        assert r.status_code == 503, r.text
        assert r.json() == {"status": 503, "message": r.json()["message"]}
        assert "Docker engine unavailable" in r.json()["message"]
        assert "503" in own_platform.api("GET", "openapi.json").json()["paths"]["/api/v1/jobs"]["post"]["responses"]
        assert alice.api("GET", "jobs", timeout=30).status_code == 200
    finally:
        engine()
    for job in jobs:
        done = wait_state(alice, job["id"], ENDED, timeout=90)
        assert done["state"] in ("lost", "succeeded"), done
        if done["state"] == "lost":
            assert "Docker engine" in done["reason"], done
        log = alice.api("GET", f"jobs/{job['id']}/logs", timeout=30).text
        assert "line 0" in log, log
        if done["state"] == "lost":
            assert f"[floyd] job lost: {done['reason']}" in log, log
    again = alice.api("POST", "jobs", json={"project": "alice/engine", "snapshot": snapshot,
                                            "command": "python -c 'print(42)'"}, timeout=30)
    assert again.status_code == 201, again.text
    finished = wait_state(alice, again.json()["job"]["id"], ENDED, timeout=120)
    assert finished["state"] == "succeeded", finished
