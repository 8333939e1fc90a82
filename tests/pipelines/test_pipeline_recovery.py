"""kill -9 the bridge while a pipeline's step runs: the restarted bridge takes the step's job
back, and when it ends the run moves on to the next step by itself."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from floyd.client.transfer import upload_code
from tests.support.jobs import client_for
from tests.support.platform import Platform, write_tree


def test_run_moves_on_after_a_bridge_restart(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    user = platform.user("pipe-survivor")
    user.api("POST", "projects", json={"name": "rec"})
    code = write_tree(tmp_path / "code", {
        "step.py": b"# pipeline recovery test\nimport os, sys, time\ntime.sleep(float(sys.argv[1]))\n"
                   b"open('/floyd/output/done.txt', 'w').write(sys.argv[1])\nprint('slept', sys.argv[1], flush=True)\n"})
    up = upload_code(client_for(user), "pipe-survivor", "rec", code)
    run = user.api("POST", "pipelines", json={
        "project": "pipe-survivor/rec", "snapshot": up.version["id"], "pipeline": "p", "no_reuse": True,
        "steps": {"first": {"command": "python step.py 6"},
                  "second": {"command": "python step.py 0", "inputs": [{"from": "first"}]}}}).json()
    deadline = time.monotonic() + 90
    while user.api("GET", f"pipelines/{run['id']}").json()["steps"][0]["job_state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    os.kill(platform.bridge_pid(), signal.SIGKILL)
    time.sleep(1)
    platform.wait_bridge(90)
    deadline = time.monotonic() + 120
    while (record := user.api("GET", f"pipelines/{run['id']}").json())["state"] == "running":
        assert time.monotonic() < deadline, record
        time.sleep(0.3)
    assert record["state"] == "succeeded", record
    assert [st["state"] for st in record["steps"]] == ["succeeded", "succeeded"]
    second = record["steps"][1]["job"]
    assert "slept 0" in user.api("GET", f"jobs/{second}/logs").text
