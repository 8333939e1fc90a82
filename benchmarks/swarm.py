"""Swarm benchmark: what does the platform add to running a job on a worker node of a Swarm?

Brings up a real 3-node Docker Swarm on this machine (tests.support.swarm: engines in network
namespaces, floyd/base loaded on each) and a platform on it (FLOYD_JOB_EXECUTOR=swarm), then
measures, side by side in the same run:

  swarm_job_submit_to_first_log_line   POST /api/v1/jobs of a job pinned to a worker (node
                                       label) → its first line reaches a follower  vs
                                       ``docker service create`` of the same print with the
                                       same constraint (restart none, host network) → the line
                                       in ``docker service logs`` (polled every 0.1 s)
                                       (goal: ratio ≤ 1.2)
  swarm_vs_one_machine_first_log_line  the same, on the swarm (worker node)  vs  on a platform
                                       of the single-machine runtime (FLOYD_JOB_EXECUTOR=docker,
                                       this machine's engine, same image), measured alternately
  swarm_jobs_3_nodes_vs_1              N short jobs (a sweep of ``sleep``; 60, --quick 12)
                                       placed by Swarm over all 3 nodes  vs  the same jobs
                                       pinned to one node; wall time from the POST to the last
                                       job's end. Each job reserves half a node's CPUs (the
                                       environments' ``cpus``), so a node runs 2 at once and the
                                       rest wait ``starting`` with Swarm's reason (the queue
                                       lets 8 start: Swarm, not the queue, is what limits)
  swarm_lost_node_detection            a worker's dockerd killed with a job on it → the job
                                       recorded ``lost``  vs  → Swarm reporting the node
                                       ``Down`` (what any tool on the manager could know first)
  swarm_endpoint_throughput_3_nodes    requests/s through the platform's proxy to an endpoint
                                       with 3 replicas (one per node)  vs  the same endpoint
                                       with 1 replica; each request holds its replica 20 ms
                                       (a model that serves one request at a time, as a GPU
                                       does), same open-loop load (tests.support.loadgen)

Needs root (namespaces, dockerd). One JSON object per measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/swarm.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from common import REPO, cli, emit, fmt, log, median

sys.path.insert(0, str(REPO))
from floyd.client import FloydClient
from tests.support.jobs import submit, wait_state
from tests.support.loadgen import ErrorTally, open_loop
from tests.support.platform import Platform, User
from tests.support.serving import ASGI_LIFESPAN, deploy_ready
from tests.support.swarm import NamespaceSwarm
from tests.support.swarm_serving import build_serve_image

IMAGE = "floyd/base:bookworm"
PRINT = "echo hello"
HALF_NODE = (os.cpu_count() or 2) / 2  # the nodes share this machine's CPUs: each advertises all of them
CONFIG = f"""
c.SwarmExecutor.lost_after = 2
c.JobQueue.max_running = 8
c.JobQueue.max_running_per_user = 0
c.BridgeApp.environments = [
    {{"name": "worker", "image": "{IMAGE}", "cpus": 0.5, "memory": "256M", "node_labels": {{"role": "worker"}}}},
    {{"name": "victim", "image": "{IMAGE}", "cpus": 0.5, "memory": "256M", "node_labels": {{"victim": "yes"}}}},
    {{"name": "anywhere", "image": "{IMAGE}", "cpus": {HALF_NODE}, "memory": "128M"}},
    {{"name": "one-node", "image": "{IMAGE}", "cpus": {HALF_NODE}, "memory": "128M",
      "node_labels": {{"victim": "yes"}}}},
]
"""


def first_line_platform(user: User, snapshot: str, phases: list[dict[str, float]]) -> float:
    """From the POST (the code snapshot is uploaded already, as `floyd run` of unchanged code).
    ``phases`` gets where the time went, from the job's record (the bridge's clock is ours)."""
    client = FloydClient(user.platform.url, user.token)
    wall0, t0 = time.time(), time.perf_counter()
    r = user.api("POST", "jobs", json={"project": f"{user.name}/bench", "snapshot": snapshot,
                                       "environment": "worker", "command": PRINT})
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    for kind, _data in client.follow_job_log(user.name, "bench", job["number"]):
        if kind == "line":
            seconds = time.perf_counter() - t0
            record = wait_state(user, job["id"], {"succeeded", "failed", "lost"}, timeout=60)
            at = {k: datetime.fromisoformat(record[k]).timestamp() - wall0 for k in ("created_at", "picked_at",
                                                                                     "started_at") if record[k]}
            phases.append({"post": at.get("created_at", math.nan), "picked": at.get("picked_at", math.nan),
                           "seen_running": at.get("started_at", math.nan), "first_line": seconds})
            return seconds
        if kind == "end":
            break
    raise RuntimeError(f"job {job['id']} ended without a line")


def first_line_direct(swarm: NamespaceSwarm, i: int) -> float:
    m = swarm.manager
    name = f"bench-direct-{i}"
    t0 = time.perf_counter()
    m.docker("service", "create", "-d", "-q", "--no-resolve-image", "--name", name, "--restart-condition", "none",
             "--network", "host", "--init", "--constraint", "node.labels.role==worker", IMAGE, "sh", "-c", PRINT)
    try:
        while True:
            out = m.docker("service", "logs", "--raw", name, check=False, timeout=30).stdout
            if "hello" in out:
                return time.perf_counter() - t0
            time.sleep(0.1)
    finally:
        m.docker("service", "rm", name, check=False)


def sweep_wall(user: User, snapshot: str, environment: str, jobs: int, seconds: float) -> float:
    """A sweep of ``jobs`` short jobs in ``environment``: seconds from the POST to the last end."""
    t0 = time.perf_counter()
    r = user.api("POST", "jobs", json={"project": f"{user.name}/bench", "snapshot": snapshot,
                                       "environment": environment, "command": f"sleep {seconds}",
                                       "sweep": {"grid": {"i": list(range(jobs))}}})
    assert r.status_code == 201, r.text
    group = r.json()["group"]["id"]
    while True:
        states = [j["state"] for j in user.api("GET", f"jobs?group={group}&limit=1000").json()["items"]]
        if len(states) == jobs and all(s in ("succeeded", "failed", "stopped", "timed_out", "lost") for s in states):
            break
        if time.perf_counter() - t0 > 600:
            raise RuntimeError(f"sweep {group} not done in 600 s: {states}")
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if set(states) != {"succeeded"}:
        raise RuntimeError(f"sweep {group} on {environment}: {states}")
    return wall


def node_down_seconds(swarm: NamespaceSwarm, user: User, base: Path) -> tuple[float, float]:
    """(seconds to the job's ``lost``, seconds to Swarm's ``Down``), both from the kill."""
    job = submit(user, "bench", {"b": b"swarm-bench-lost"}, base, environment="victim", command="sleep 300")["job"]
    wait_state(user, job["id"], {"running"}, timeout=90)
    time.sleep(2)  # placed and started
    node = swarm.node("node2")
    t0 = time.perf_counter()
    node.kill(signal.SIGKILL)
    down = lost = None
    while down is None or lost is None:
        if down is None and swarm.node_states().get("node2") == "Down":
            down = time.perf_counter() - t0
        if lost is None and user.api("GET", f"jobs/{job['id']}").json()["state"] == "lost":
            lost = time.perf_counter() - t0
        if time.perf_counter() - t0 > 120:
            raise RuntimeError("node loss not seen in 120 s")
        time.sleep(0.1)
    swarm.restart_node(node)
    return lost, down


# Each request holds its replica's only worker for 20 ms (time.sleep in the ASGI app, not await).
BUSY_APP = b'''import time
async def app(scope, receive, send):
''' + ASGI_LIFESPAN + b'''    time.sleep(0.02)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
'''


def serve_config(image: str) -> str:
    return f'''c.BridgeApp.environments.append({{"name": "serve", "image": "{image}", "cpus": 0.3,
                                         "memory": "192M"}})\n'''


def endpoint_throughput(platform: Platform, base: Path, quick: bool) -> None:
    """The same load on 1 replica, then on 3 replicas spread over the 3 nodes."""
    user = platform.user("server")
    seconds, rate = (4.0, 400.0) if quick else (10.0, 400.0)
    path_of = f"/services/floyd/endpoints/{user.name}/{{}}/"
    results = {}
    for n in (1, 3):
        name = f"busy{n}"
        v = deploy_ready(user, name, {"app.py": BUSY_APP}, base, environment="serve", replicas=n)
        nodes = sorted(i["node"] for i in v["replicas"]["items"])
        errors = ErrorTally()
        open_loop(platform.hub_port, path_of.format(name), user.headers, 50, 1.0, errors)  # warm connections
        result = open_loop(platform.hub_port, path_of.format(name), user.headers, rate, seconds, errors)
        results[n] = (result.rps, errors.total, nodes)
    (rps3, failed3, nodes3), (rps1, failed1, nodes1) = results[3], results[1]
    emit("swarm_endpoint_throughput_3_nodes", rps3, "the same endpoint with 1 replica", rps1, unit="req/s",
         seconds=seconds, offered_rate=rate, service_ms=20, nodes=nodes3, baseline_nodes=nodes1,
         failed=failed3, baseline_failed=failed1, goal_note="ratio near 3: replicas on other nodes add capacity")


SINGLE_CONFIG = f"""
c.BridgeApp.environments = [{{"name": "worker", "image": "{IMAGE}", "cpus": 0.5, "memory": "256M"}}]
"""


def bench(base: Path, quick: bool) -> None:
    swarm = NamespaceSwarm(3, labels={2: {"role": "worker", "victim": "yes"}, 3: {"role": "worker"}})
    platform: Platform | None = None
    single = Platform.create(base / "one-machine", bridge_config=SINGLE_CONFIG,
                             extra_env={"FLOYD_JOB_EXECUTOR": "docker"})
    try:
        single.start()
        one_user = single.user("bencher")
        one_warm = submit(one_user, "bench", {"b": b"swarm-bench-code"}, base, environment="worker",
                          command=PRINT)["job"]
        wait_state(one_user, one_warm["id"], {"succeeded"}, timeout=90)
        t = time.perf_counter()
        serve_image = build_serve_image()
        swarm.up([IMAGE, serve_image])
        log(f"swarm up in {time.perf_counter() - t:.1f}s")
        platform = Platform.create(base, bridge_config=CONFIG + serve_config(serve_image),
                                   extra_env={"FLOYD_JOB_EXECUTOR": "swarm", "FLOYD_SWARM_MANAGER": swarm.manager.url})
        platform.start()
        user = platform.user("bencher")
        runs = 3 if quick else 10
        warm = submit(user, "bench", {"b": b"swarm-bench-code"}, base, environment="worker", command=PRINT)["job"]
        wait_state(user, warm["id"], {"succeeded"}, timeout=90)
        ours, direct, one_machine, phases, one_phases = [], [], [], [], []
        for i in range(runs):  # alternating, so that a busy moment of the machine hits every side
            ours.append(first_line_platform(user, warm["snapshot"], phases))
            direct.append(first_line_direct(swarm, i))
            one_machine.append(first_line_platform(one_user, one_warm["snapshot"], one_phases))
        emit("swarm_job_submit_to_first_log_line", median(ours), "docker service create + service logs",
             median(direct), goal=1.2, runs=runs, values=fmt(ours), baseline_values=fmt(direct),
             phases={k: round(median(p[k] for p in phases), 3) for k in phases[0]})
        emit("swarm_vs_one_machine_first_log_line", median(ours),
             "the same job on the single-machine runtime (docker executor, this machine's engine)",
             median(one_machine), runs=runs, values=fmt(ours), baseline_values=fmt(one_machine),
             baseline_phases={k: round(median(p[k] for p in one_phases), 3) for k in one_phases[0]})
        jobs, seconds = (12, 1) if quick else (60, 2)
        spread = sweep_wall(user, warm["snapshot"], "anywhere", jobs, seconds)
        one = sweep_wall(user, warm["snapshot"], "one-node", jobs, seconds)
        emit("swarm_jobs_3_nodes_vs_1", spread, f"the same {jobs} jobs pinned to one node", one, jobs=jobs,
             job_seconds=seconds, cpus_per_job=HALF_NODE, node_cpus=os.cpu_count(), ideal_ratio=round(1 / 3, 3))
        lost, down = node_down_seconds(swarm, user, base)
        emit("swarm_lost_node_detection", lost, "Swarm marks the node Down", down,
             lost_after=2, dispatcher_heartbeat="1s")
        endpoint_throughput(platform, base, quick)
    finally:
        if platform is not None:
            platform.stop()
        single.stop()
        swarm.down()
        subprocess.run(["sync"], check=False)


if __name__ == "__main__":
    sys.exit(cli(bench, __doc__, quick_help="3 runs of each instead of 10", keep_help="keep the platform's files",
                 prefix="floyd-bench-swarm-"))
