"""GPUs on the swarm: a node advertises its NVIDIA device ids as generic resources; a GPU job
lands only there and gets exactly the leased id, a second waits queued until it frees, and with
no NVIDIA runtime on the node the job ends saying so instead of running on no GPU."""

from __future__ import annotations

import time
from pathlib import Path

from jobs_bridge.jobs.queue import FIRST_REASON
from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform
from tests.swarm.conftest import GPU_ID

# /proc/1/environ: sh drops DOCKER_RESOURCE_NVIDIA-GPU from its own environment (a '-' in the name).
SHOW = ('tr "\\0" "\\n" </proc/1/environ | grep -E "^(DOCKER_RESOURCE_|NVIDIA_VISIBLE_DEVICES)" | sort; '
        'echo "on $(hostname)"')


def test_gpu_job_placed_on_the_node_with_the_gpu(pretend_gpu_platform: Platform, tmp_path: Path) -> None:
    user = pretend_gpu_platform.user("gpuuser")
    first = submit(user, "g", {"g": b"gpu-1"}, tmp_path, environment="a100", gpus=1,
                   command=f"{SHOW}; sleep 4")["job"]
    wait_state(user, first["id"], {"running"}, timeout=90)
    second = submit(user, "g", {"g": b"gpu-2"}, tmp_path, environment="a100", gpus=1, command=SHOW)["job"]
    # a job is created "waiting for a free slot"; the queue's pass after the submit says what holds it
    deadline = time.monotonic() + 3.0
    waiting = user.api("GET", f"jobs/{second['id']}").json()
    while waiting["state"] == "queued" and waiting["reason"] == FIRST_REASON and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = user.api("GET", f"jobs/{second['id']}").json()
    assert waiting["state"] == "queued" and "GPU" in waiting["reason"], waiting
    done = wait_state(user, first["id"], {"succeeded", "failed", "lost"}, timeout=60)
    text = user.api("GET", f"jobs/{first['id']}/logs").text
    assert done["state"] == "succeeded", (done, text)
    assert f"NVIDIA_VISIBLE_DEVICES={GPU_ID}" in text and f"DOCKER_RESOURCE_NVIDIA-GPU={GPU_ID}" in text, text
    assert "on node2" in text and done["resources"]["gpu_devices"] == [GPU_ID]
    later = wait_state(user, second["id"], {"succeeded", "failed", "lost"}, timeout=90)
    assert later["state"] == "succeeded" and "on node2" in user.api("GET", f"jobs/{second['id']}/logs").text


def test_gpu_job_on_a_node_without_nvidia_runtime_says_so(swarm_platform: Platform, tmp_path: Path) -> None:
    user = swarm_platform.user("noruntime")
    job = submit(user, "g", {"g": b"gpu-3"}, tmp_path, environment="a100", gpus=1, command="echo ran")["job"]
    done = wait_state(user, job["id"], {"succeeded", "failed", "lost"}, timeout=90)
    assert done["state"] == "failed", done
    assert "node2" in done["reason"] and "no NVIDIA container runtime" in done["reason"], done["reason"]
    assert GPU_ID in done["reason"]
