"""A swarm job's CPU and memory reach its metrics whatever node it runs on: its container writes
its cgroup counters to the shared root (executors/swarm_stats.py), the bridge reads them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from jobs_bridge.executors.swarm_stats import (
    CPU_V1,
    CPU_V2,
    GPUS,
    MEMORY_V1,
    MEMORY_V2,
    UPTIME,
    StatsReader,
    sampler_argv,
)
from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform
from tests.support.swarm import NamespaceSwarm

SPIN = b"import time\nend = time.time() + 8\nwhile time.time() < end:\n    pass\nprint('spun', flush=True)\n"


def write_sample(path: Path, uptime: float, cpu: str, memory: str, gpus: str = "") -> None:
    path.write_text(f"== {UPTIME}\n{uptime} 1.0\n{cpu}{memory}{gpus}")
    os.utime(path, None)


def test_the_sampler_loop_is_a_shell_script_that_runs_the_command() -> None:
    argv = sampler_argv(["echo", "the job's own line"], 0.5)
    assert subprocess.run(["sh", "-n", "-c", argv[2]], capture_output=True, text=True).stderr == ""
    # Outside a container the loop outlives the command (in one, it ends with PID 1): end its group.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "the job's own line\n"
        assert proc.wait(timeout=10) == 0
    finally:
        os.killpg(proc.pid, signal.SIGKILL)


def test_reader_turns_two_samples_into_a_cpu_percentage(tmp_path: Path) -> None:
    sample, reader = tmp_path / "sample", StatsReader()
    # cgroup v2, one GPU: the first sample has no CPU percentage yet (nothing to compare with).
    gpu = f"== {GPUS}\nGPU-5f1c0ffe, 37, 812\n"
    write_sample(sample, 100.0, f"== {CPU_V2}\nusage_usec 1000000\nuser_usec 1\n", f"== {MEMORY_V2}\n4096\n", gpu)
    first = reader.read(str(sample))
    assert first == {"system/memory_bytes": 4096.0, "system/gpuGPU-5f1c0ffe_utilization_percent": 37.0,
                     "system/gpuGPU-5f1c0ffe_memory_mib": 812.0}
    write_sample(sample, 102.0, f"== {CPU_V2}\nusage_usec 2000000\n", f"== {MEMORY_V2}\n8192\n")
    assert reader.read(str(sample)) == {"system/memory_bytes": 8192.0, "system/cpu_percent": 50.0}
    # cgroup v1 (nanoseconds), and a sample too old to be a running job's.
    v1, reader = tmp_path / "v1", StatsReader()
    write_sample(v1, 10.0, f"== {CPU_V1}\n0\n", f"== {MEMORY_V1}\n100\n")
    reader.read(str(v1))
    write_sample(v1, 11.0, f"== {CPU_V1}\n2000000000\n", f"== {MEMORY_V1}\n100\n")
    assert reader.read(str(v1))["system/cpu_percent"] == 200.0
    os.utime(v1, (time.time() - 3600, time.time() - 3600))
    assert reader.read(str(v1)) == {} and reader.read(str(tmp_path / "none")) == {}


def test_a_job_on_another_node_has_system_metrics(swarm: NamespaceSwarm, swarm_platform: Platform,
                                                  tmp_path: Path) -> None:
    user = swarm_platform.user("sampled")
    job = submit(user, "spin", {"spin.py": SPIN}, tmp_path, environment="ssd", command="python3 spin.py")["job"]
    done = wait_state(user, job["id"], {"succeeded", "failed", "lost"}, timeout=120)
    assert done["state"] == "succeeded", (done, user.api("GET", f"jobs/{job['id']}/logs").text)
    series = user.api("GET", f"jobs/{job['id']}/metrics").json()["series"]
    assert series.get("system/memory_bytes") and series["system/memory_bytes"][0]["value"] > 0, series
    assert series.get("system/cpu_percent") and max(pt["value"] for pt in series["system/cpu_percent"]) > 10, series
    # The sampler wrote into the job's own directory on the shared root, not into its output.
    assert "spun" in user.api("GET", f"jobs/{job['id']}/logs").text
    r = user.api("GET", f"jobs/{job['id']}/output/files", params={"recursive": "1"})
    assert r.status_code == 200, r.text
    assert not any("sample" in f["path"] for f in r.json()["files"]), r.json()
