"""kill -9 the bridge while jobs run: the restarted bridge finds their containers by label,
re-attaches logs without losing or repeating a line, records the final states, marks a
job whose container vanished as lost, and unmounts the code overlay the dead bridge left."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import docker

from jobs_bridge.storage import overlay
from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform

COUNTER = {"count.py": b"import sys, time\nfor i in range(int(sys.argv[1])):\n    print(f'line {i}', flush=True)\n"
                       b"    time.sleep(0.1)\n"}


def test_bridge_killed_while_jobs_run(platform: Platform, workspace_image: str, tmp_path: Path,
                                      docker_client: docker.DockerClient) -> None:
    user = platform.user("survivor")
    keeps = submit(user, "rec", COUNTER, tmp_path, command="python count.py 60")["job"]
    vanishes = submit(user, "rec", COUNTER, tmp_path, command="python count.py 600")["job"]
    wait_state(user, keeps["id"], {"running"})
    wait_state(user, vanishes["id"], {"running"})
    time.sleep(1.5)
    os.kill(platform.bridge_pid(), signal.SIGKILL)
    # While the bridge is down: one job goes on printing, the other's container disappears.
    gone = docker_client.containers.list(filters={"label": "org.floyd.job=survivor/rec/2"})
    assert gone, "the job's container was not found by its label"
    gone[0].remove(force=True)
    # Its code overlay stays mounted: nobody is left to unmount it (unmounted below at any rate).
    code = platform.root / "jobs" / "survivor" / "rec" / "2" / "code"
    overlaid = os.geteuid() == 0
    try:
        assert os.path.ismount(code) == overlaid
        time.sleep(2)
        platform.wait_bridge(90)
        lost = wait_state(user, vanishes["id"], {"lost", "failed", "succeeded"}, timeout=30)
        assert lost["state"] == "lost" and "gone" in lost["reason"]
        # The restarted bridge released it: a plain directory with the snapshot's files.
        assert lost["code_mount"] == ("overlay" if overlaid else lost["code_mount"])
        assert not os.path.ismount(code) and (code / "count.py").read_bytes() == COUNTER["count.py"]
        assert not (code.parent / ".code").exists()
    finally:
        while os.path.ismount(code):
            overlay.unmount(code)
    done = wait_state(user, keeps["id"], {"succeeded", "failed", "lost"}, timeout=90)
    assert done["state"] == "succeeded", done
    log = user.api("GET", f"jobs/{keeps['id']}/logs").text.splitlines()
    lines = [ln for ln in log if ln.startswith("line ")]
    assert lines == [f"line {i}" for i in range(60)]  # nothing lost, nothing twice
    assert not os.path.ismount(code.parent.parent / "1" / "code")  # released at its end
    # The queue works after the restart.
    again = submit(user, "rec", COUNTER, tmp_path, command="python count.py 2")["job"]
    assert wait_state(user, again["id"], {"succeeded"}, timeout=60)["state"] == "succeeded"
