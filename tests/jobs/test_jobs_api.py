"""Jobs in real containers on the real engine, through the real hub and bridge."""

from __future__ import annotations

from pathlib import Path

from tests.support.jobs import client_for, submit, wait_state
from tests.support.platform import Platform

TRAIN = b"""
import json, os, sys
print("starting", flush=True)
for step in range(3):
    print(json.dumps({"metric": "loss", "value": 1.0 / (step + 1), "step": step}), flush=True)
os.makedirs("/floyd/output/model", exist_ok=True)
open("/floyd/output/model/weights.txt", "w").write("w=" + os.environ.get("FLOYD_PARAM_LR", "?"))
print("inputs:", sorted(os.listdir("/floyd/input")) if os.path.isdir("/floyd/input") else [], flush=True)
print("token?", "JUPYTERHUB_API_TOKEN" in os.environ, bool(os.environ.get("FLOYD_JOB_TOKEN")), flush=True)
"""


def test_job_runs_in_a_container_with_logs_metrics_outputs_and_record(platform: Platform, workspace_image: str,
                                                                      tmp_path: Path) -> None:
    user = platform.user("jobber")
    record = submit(user, "mnist-cnn", {"train.py": TRAIN, "notes.md": b"x"}, tmp_path,
                    command="python train.py", params={"lr": "0.01"}, message="first try")["job"]
    assert record["id"] == "jobber/mnist-cnn/1" and record["state"] == "queued"
    events = list(client_for(user).follow_job_log("jobber", "mnist-cnn", 1))
    lines = [d for e, d in events if e == "line"]
    assert events[-1][0] == "end" and '"succeeded"' in events[-1][1], events[-3:]
    assert "starting" in lines and "token? False True" in lines
    job = wait_state(user, record["id"], {"succeeded"})
    assert job["exit_code"] == 0 and job["image_id"].startswith("sha256:") and job["package_count"] > 10
    assert job["snapshot"].startswith("sha256:") and job["params"] == {"lr": "0.01"}
    # queue wait (created → picked) and start-up (picked → started) are told apart
    assert record["picked_at"] is None
    assert job["created_at"] <= job["picked_at"] <= job["started_at"] <= job["finished_at"], job
    assert job["latest_metrics"]["loss"] == 1.0 / 3
    metrics = user.api("GET", f"jobs/{record['id']}/metrics").json()["series"]
    assert [p["step"] for p in metrics["loss"]] == [0, 1, 2]
    files = user.api("GET", f"jobs/{record['id']}/output/files", params={"recursive": "1"}).json()["files"]
    assert [f["path"] for f in files] == ["model/weights.txt"]
    r = user.api("GET", f"jobs/{record['id']}/output/download", params={"path": "model/weights.txt"})
    assert r.content == b"w=0.01"
    # The log is persisted, and a late follower gets all of it.
    assert "starting" in user.api("GET", f"jobs/{record['id']}/logs").text
    late = [d for e, d in client_for(user).follow_job_log("jobber", "mnist-cnn", 1) if e == "line"]
    assert late == lines
    assert (platform.root / "jobs" / "jobber" / "mnist-cnn" / "1" / "logs" / "output.log").exists()


def test_job_container_limits_and_isolation(platform: Platform, workspace_image: str, tmp_path: Path,
                                            docker_client) -> None:
    """What reaches the Docker API: CPU and memory limits, read-only inputs, no Docker socket, labels."""
    user = platform.user("limits")
    user.api("POST", "datasets", json={"name": "in"})
    from floyd.client.transfer import upload
    from tests.support.platform import write_tree

    upload(client_for(user), "limits", "in", write_tree(tmp_path / "in", {"a.txt": b"a"}))
    job = submit(user, "lim", {"s.py": b"import time\ntime.sleep(30)\n"}, tmp_path, command="python s.py",
                 cpus=0.5, memory="300M", inputs=[{"source": "in:1", "mount": "data"}])["job"]
    wait_state(user, job["id"], {"running"})
    try:
        c = docker_client.containers.list(filters={"label": f"org.floyd.job={job['id']}"})[0]
        host = c.attrs["HostConfig"]
        assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 300 * 2**20 and host["Init"] is True
        mounts = {m["Destination"]: m["RW"] for m in c.attrs["Mounts"]}
        assert mounts == {"/floyd/code": True, "/floyd/output": True, "/floyd/cache/pip": True,
                          "/floyd/input/data": False}
        assert "JUPYTERHUB_API_TOKEN" not in " ".join(c.attrs["Config"]["Env"])
        assert c.attrs["Config"]["User"] == "1000:100"
    finally:
        user.api("POST", f"jobs/{job['id']}/stop")
    assert "path" not in user.api("GET", f"jobs/{job['id']}").json()["inputs"][0]
