"""The autoscaling half of benchmarks/serving.py (imported by it, not run alone), measured on the
platform that script started, side by side with its baselines:
  serving_autoscale_reaction_s       from a load step (1 → 4 callers of a 0.2 s handler, target 1
                                     in flight per replica) to the first answer from the added
                                     replica, vs that replica's own start-to-ready time
                                     (goal: ≤ replica start + 2 s)
  serving_cold_start_s               first request to a version at zero replicas until its answer,
                                     vs a plain `docker run` of the same replica (image, command,
                                     environment, mounts) until its readiness check answers
                                     (goal: ≤ 1.2×)
  serving_scale_down_failures        requests that did not get a 200 while the endpoint scaled
                                     back from 2 replicas to 1 under ~40 requests/s (goal: 0)
"""

from __future__ import annotations

import asyncio
import re
import socket
import sys
import time
from typing import Any

import docker
import requests
from common import REPO, emit, log, median

sys.path.insert(0, str(REPO))  # `make bench` runs every file here on its own
from floyd.client.http import FloydClient
from tests.support.loadgen import LENGTH_RE, get_request
from tests.support.serving import ASGI_LIFESPAN

SLOW_APP = b'''import asyncio, os

REPLICA = os.environ.get("FLOYD_REPLICA", "?").encode()


async def app(scope, receive, send):
''' + ASGI_LIFESPAN + b'''    if scope["path"] == "/slow":
        await asyncio.sleep(0.2)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(REPLICA)).encode())]})
    await send({"type": "http.response.body", "body": REPLICA})
'''
READY_RE = re.compile(r"autoscaler: r(\d+) ready in ([\d.]+) s")


async def call(port: int, request: bytes, conn: list) -> tuple[int, bytes]:
    """One request on the kept-alive connection in ``conn`` (opened on first use): status, body."""
    if not conn:
        conn.extend(await asyncio.open_connection("127.0.0.1", port))
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    m = LENGTH_RE.search(head)
    body = await reader.readexactly(int(m.group(1))) if m else b""
    return int(head[9:12]), body


class Scaling:
    """The three measurements, on one endpoint per purpose of ``user`` on the running platform."""

    def __init__(self, bench: Any, client: FloydClient, hub_port: int, key_headers: dict[str, str]) -> None:
        self.bench = bench  # serving.Bench: its deploy() and user
        self.client = client
        self.hub_port = hub_port
        self.auth = key_headers
        self.dc = docker.from_env(timeout=120)

    def endpoint(self, name: str, autoscaling: dict) -> str:
        self.client.request("POST", "projects", json={"name": name})
        self.client.request("POST", "endpoints", json={"name": name, "autoscaling": autoscaling})
        key = self.client.request("POST", f"endpoints/{self.bench.user}/{name}/keys", json={"name": "b"}).json()
        self.auth = {"Authorization": f"Bearer {key['key']}"}
        self.bench.deploy(self.client, "1", name, SLOW_APP)
        return f"/services/floyd/endpoints/{self.bench.user}/{name}/"

    def desired(self, name: str) -> int:
        v = self.client.request("GET", f"endpoints/{self.bench.user}/{name}/versions/1").json()
        return int(v["replicas"]["desired"])

    def run(self, common: dict[str, Any]) -> None:
        self.reaction_and_scale_down(common)
        self.cold_start(common)

    # -- reaction time and scale-down ------------------------------------------------------
    def reaction_and_scale_down(self, common: dict[str, Any]) -> None:
        name = "scaled"
        path = self.endpoint(name, {"min_replicas": 1, "max_replicas": 2, "target_in_flight": 1,
                                    "scale_up_window": 0, "scale_down_window": 2})
        request = get_request(self.hub_port, path + "slow", self.auth)
        result = asyncio.run(self._step(request, get_request(self.hub_port, path, self.auth)))
        logs = self.client.request("GET", f"endpoints/{self.bench.user}/{name}/versions/1/logs").text
        starts = [float(s) for i, s in READY_RE.findall(logs) if i == "1"]
        start = starts[0] if starts else float("nan")
        log(f"autoscale: {result}, r1 start-to-ready {start:.2f} s")
        emit("serving_autoscale_reaction_s", result["reaction_s"], "the added replica's own start-to-ready time "
             "(goal: at most 2 s more)", start, unit="s", meets_goal=result["reaction_s"] <= start + 2,
             goal_added_s=2.0, step="1 → 4 callers of a 0.2 s handler, target 1 in flight", **common)
        emit("serving_scale_down_failures", result["down_failed"], "requests sent while 2 replicas became 1",
             result["down_ok"] + result["down_failed"], unit="requests", meets_goal=result["down_failed"] == 0,
             goal=0, scale_down_s=result["down_s"], failures=result["failures"][:10], **common)

    async def _step(self, request: bytes, quick: bytes) -> dict[str, Any]:
        stop, seen = asyncio.Event(), {"first_r1": 0.0}
        failures: list[Any] = []
        ok = [0]

        async def caller(paced: float, request: bytes = request) -> None:
            conn: list = []
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    status, body = await call(self.hub_port, request, conn)
                    if status != 200:
                        failures.append(status)
                    else:
                        ok[0] += 1
                        if body == b"1" and not seen["first_r1"]:
                            seen["first_r1"] = time.perf_counter()
                except (OSError, asyncio.IncompleteReadError) as exc:
                    failures.append(type(exc).__name__)
                    conn.clear()
                await asyncio.sleep(max(0.0, paced - (time.perf_counter() - t0)))

        first = [asyncio.ensure_future(caller(0))]
        await asyncio.sleep(2.0)
        step_at = time.perf_counter()
        step = [asyncio.ensure_future(caller(0)) for _ in range(3)]
        while not seen["first_r1"] and time.perf_counter() - step_at < 120:
            await asyncio.sleep(0.05)
        reaction = seen["first_r1"] - step_at if seen["first_r1"] else float("nan")
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*first, *step)
        # Scale-down: a light paced load (8 callers of the instant path, one request each 0.2 s: about
        # 40 requests/s, well under one in flight) until one replica is left.
        failures.clear()
        ok[0] = 0
        stop.clear()
        light = [asyncio.ensure_future(caller(0.2, quick)) for _ in range(8)]
        down_at = time.perf_counter()
        while await asyncio.to_thread(self.desired, "scaled") > 1 and time.perf_counter() - down_at < 120:
            await asyncio.sleep(0.2)
        down_s = time.perf_counter() - down_at
        await asyncio.sleep(2.0)  # the drained replica stops meanwhile
        stop.set()
        await asyncio.gather(*light)
        return {"reaction_s": round(reaction, 3), "down_ok": ok[0], "down_failed": len(failures),
                "failures": failures, "down_s": round(down_s, 2)}

    # -- cold start ------------------------------------------------------------------------
    def cold_start(self, common: dict[str, Any]) -> None:
        name = "sleepy"
        path = self.endpoint(name, {"min_replicas": 0, "max_replicas": 1, "idle_timeout": 1, "scale_down_window": 0})
        container = self.dc.containers.list(filters={"label": f"org.floyd.endpoint={self.bench.user}/{name}/v1/r0/0"})[0]
        attrs = container.attrs
        rounds = 1 if self.bench.quick else 3
        ours, plain = [], []
        for _ in range(rounds):
            ours.append(self._wake(name, path))
            plain.append(self._docker_run(attrs))
        o, p = median(ours), median(plain)
        log(f"cold start: platform {ours}, plain docker run {plain}")
        emit("serving_cold_start_s", o, "plain `docker run` of the same replica until its readiness check answers",
             p, unit="s", meets_goal=o <= 1.2 * p, goal_max_ratio=1.2, rounds=rounds, runs=ours, baseline_runs=plain,
             **common)

    def _wake(self, name: str, path: str) -> float:
        deadline = time.monotonic() + 120
        while self.desired(name) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # the stopped container is gone
        t0 = time.perf_counter()
        r = requests.get(f"http://127.0.0.1:{self.hub_port}{path}", headers=self.auth, timeout=120)
        took = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"first request after zero: {r.status_code} {r.text[:200]}")
        return took

    def _docker_run(self, attrs: dict) -> float:
        cfg, host = attrs["Config"], attrs["HostConfig"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = list(cfg["Cmd"])
        cmd[cmd.index("--port") + 1] = str(port)
        env = dict(e.split("=", 1) for e in cfg["Env"])
        t0 = time.perf_counter()
        c = self.dc.containers.run(cfg["Image"], cmd, environment=env, network_mode="host", user=cfg.get("User"),
                                   working_dir=cfg.get("WorkingDir"), volumes=host.get("Binds") or [], detach=True,
                                   labels={"org.floyd.owner": self.bench.user}, init=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    r = requests.get(f"http://127.0.0.1:{port}/_floyd/ready", timeout=2,
                                     headers={"X-Floyd-Proxy-Token": env["FLOYD_PROXY_TOKEN"]})
                    if r.status_code == 200:
                        return time.perf_counter() - t0
                except requests.RequestException:
                    pass
                time.sleep(0.02)
            raise RuntimeError("the plain docker run never got ready")
        finally:
            c.remove(force=True)


if __name__ == "__main__":
    print("benchmarks/serving_scaling.py: measured by benchmarks/serving.py, on the platform that starts "
          "(`make bench` runs it).", file=sys.stderr)
