"""Serving benchmark: what does the Floyd proxy add in front of an endpoint replica?
Starts a real platform the way ``make up`` does (tests.support.platform, Docker executor), deploys a
trivial ASGI handler (``app.py`` answering ``ok``) as an endpoint with an API key, and measures,
side by side in the same run, against the same replica reached directly on its loopback port:
  serving_added_latency_p50 / _p99   concurrency 1, one keep-alive connection each side,
                                     alternating blocks: through the bridge (API key checked,
                                     metrics recorded, pooled upstream connection) minus direct
                                     (goal: added p50 ≤ 0.5 ms). The same through the public
                                     URL (configurable-http-proxy first) is reported beside it.
  serving_throughput_c32             requests/s with 32 keep-alive connections for a few
                                     seconds, through the bridge vs direct, alternating rounds,
                                     load from ``wrk -t1 -c32`` (goal: ratio ≥ 0.8 on the ASGI
                                     handler, ≥ 1.0 on Flask); the asyncio client's figures
                                     (one round a side) beside them (python_client_*)
  serving_rolling_deploy_failures    requests that did not get a 200 while v2, then v3 were
                                     deployed under ~200 requests/s through the public URL
                                     (goal: 0)
  serving_autoscale_reaction_s, serving_cold_start_s, serving_scale_down_failures
                                     autoscaling, measured by serving_scaling.py (its docstring)
The c=32 load comes from ``wrk`` (benchmarks/loadgen.py: C, one thread, about half the asyncio
client's CPU a request), for every side alike: the asyncio client costs 30 µs or more a request,
most of one of the 2 cores, and would weigh on the proxy's side. Without wrk (``scripts/ensure-system.sh wrk``) the rows fall back
to the asyncio client and say so (``load_generator``). Everything else (c=1 latency, the rolling
deploys' load) uses a minimal asyncio HTTP/1.1 keep-alive client (fixed request bytes,
Content-Length framing).
One JSON object per measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/serving.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import docker
import requests
from common import build_image, cli, log, median, run_then_cleanup
from common import emit as emit_record
from loadgen import PYTHON_CLIENT, load_generator, wrk_rps

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from serving_scaling import Scaling  # noqa: E402  (after the repository is on sys.path)

from floyd.client.http import FloydClient  # noqa: E402
from floyd.client.ignore import IgnoreRules  # noqa: E402
from floyd.client.transfer import upload_code  # noqa: E402
from tests.support.loadgen import exchange, get_request  # noqa: E402
from tests.support.platform import Platform  # noqa: E402
from tests.support.serving import ASGI_OK_APP, FLASK_OK_APP  # noqa: E402

APP = ASGI_OK_APP  # a raw ASGI app answering 'ok': the proxy's cost shows
FLASK_APP = FLASK_OK_APP


class Target:
    """One way to reach the handler: host, port, and the exact request bytes to send."""

    def __init__(self, label: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.label = label
        self.port = port
        self.path = path
        self.headers = headers
        self.request = get_request(port, path, headers)


def throughput(target: Target, connections: int, seconds: float, generator: str) -> dict[str, Any]:
    """One closed-loop round at ``target``: wrk when ``generator`` is wrk's, else the asyncio client."""
    if generator == PYTHON_CLIENT:
        return asyncio.run(closed_loop(target, connections, seconds))
    return wrk_rps(target.port, target.path, target.headers, seconds, connections)



async def sequential(target: Target, n: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            status = await exchange(reader, writer, target.request)
            out.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"{target.label}: status {status}")
    finally:
        writer.close()
    return out


async def closed_loop(target: Target, connections: int, seconds: float) -> dict[str, Any]:
    """``connections`` clients, each sending its next request as soon as the last one answered."""
    done, errors = [0], [0]
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            while time.perf_counter() < deadline:
                if await exchange(reader, writer, target.request) == 200:
                    done[0] += 1
                else:
                    errors[0] += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    return {"rps": done[0] / elapsed, "requests": done[0], "errors": errors[0], "seconds": round(elapsed, 3)}


async def open_loop(target: Target, rate: float, stop: asyncio.Event, connections: int = 16) -> dict[str, Any]:
    """About ``rate`` requests/s spread over kept-alive connections until ``stop``; every
    request that does not come back 200 (or fails to connect, or is cut) is counted."""
    ok: list[int] = [0]
    failed: list[int | str] = []
    interval = connections / rate

    async def client(i: int) -> None:
        reader = writer = None
        next_at = time.perf_counter() + i * interval / connections
        while not stop.is_set():
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += interval
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
                status = await exchange(reader, writer, target.request)  # type: ignore[arg-type]
                if status == 200:
                    ok[0] += 1
                else:
                    failed.append(status)
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                failed.append(type(exc).__name__)
                writer = None
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - t0
    return {"ok": ok[0], "failed": len(failed), "failures": failed[:10], "rps": (ok[0] + len(failed)) / elapsed,
            "seconds": round(elapsed, 2)}


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s))) - 1))] if s else float("nan")


class Bench:
    def __init__(self, base: Path, quick: bool) -> None:
        self.base = base
        self.quick = quick
        self.dc = docker.from_env(timeout=120)
        self.platform: Platform | None = None
        self.user = f"servebench{os.getpid()}"

    def deploy(self, client: FloydClient, version: str, name: str = "trivial", app: bytes = APP) -> dict:
        root = self.base / f"code-{name}-{version}"
        root.mkdir(parents=True, exist_ok=True)
        (root / "app.py").write_bytes(app)
        (root / "version.txt").write_text(version)
        snap = upload_code(client, self.user, name, root, IgnoreRules.for_directory(root).keep)
        v = client.request("POST", f"endpoints/{self.user}/{name}/versions",
                           json={"project": f"{self.user}/{name}", "snapshot": snap.version["id"]}).json()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            v = client.request("GET", f"endpoints/{self.user}/{name}/versions/{v['number']}").json()
            if v["state"] in ("ready", "failed"):
                break
            time.sleep(0.1)
        if v["state"] != "ready":
            raise RuntimeError(f"deploy failed: {v.get('reason')}")
        return v

    def run(self) -> None:
        quick = self.quick
        log(build_image())
        self.platform = Platform.create(self.base / "platform")
        self.platform.start()
        p = self.platform
        u = p.user(self.user)
        client = FloydClient(p.url, u.token)
        for name in ("trivial", "trivial-flask"):
            client.request("POST", "projects", json={"name": name})
            client.request("POST", "endpoints", json={"name": name})
        self.deploy(client, "1")
        self.deploy(client, "1", "trivial-flask", FLASK_APP)
        common: dict[str, Any] = {"mode": "quick" if quick else "full", "executor": "docker"}
        public = self.measure(client, "trivial", "", {**common, "handler": "raw ASGI app.py answering 'ok'"})
        self.measure(client, "trivial-flask", "_flask", {**common, "handler": "Flask app.py answering 'ok'"})

        # (c) rolling deploys under ~200 requests/s through the public URL.
        async def rolling() -> dict[str, Any]:
            stop = asyncio.Event()
            load = asyncio.ensure_future(open_loop(public, 200.0, stop))
            await asyncio.sleep(1.0)
            t0 = time.perf_counter()
            for version in ("2", "3"):
                await asyncio.to_thread(self.deploy, client, version)
                await asyncio.sleep(1.0)
            deploys_s = time.perf_counter() - t0
            stop.set()
            result = await load
            return {**result, "deploys_s": round(deploys_s, 2)}

        roll = asyncio.run(rolling())
        log(f"rolling deploys under load: {roll}")
        states = [v["state"] for v in client.request("GET", f"endpoints/{self.user}/trivial/versions").json()["items"]]
        emit_record("serving_rolling_deploy_failures", roll["failed"], "requests sent during two rolling deploys",
                    roll["ok"] + roll["failed"], unit="requests", meets_goal=roll["failed"] == 0, goal=0,
                    rate_rps=round(roll["rps"], 1), deploys_s=roll["deploys_s"], failures=roll["failures"],
                    version_states=states, **common)
        # (d) autoscaling: reaction to a load step, cold start from zero, scale-down (serving_scaling.py).
        Scaling(self, client, p.hub_port, {}).run(common)

    def measure(self, client: FloydClient, name: str, suffix: str, common: dict[str, Any]) -> Target:
        """(a) latency at concurrency 1 and (b) throughput at 32, direct vs through the bridge
        (and through the public URL); returns the public target for (c)."""
        p = self.platform
        assert p is not None
        quick = self.quick
        key = client.request("POST", f"endpoints/{self.user}/{name}/keys", json={"name": "bench"}).json()["key"]
        container = self.dc.containers.list(filters={"label": f"org.floyd.endpoint={self.user}/{name}/v1/r0/0"})[0]
        env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
        cmd = container.attrs["Config"]["Cmd"]
        replica_port = int(cmd[cmd.index("--port") + 1])
        path = f"/services/floyd/endpoints/{self.user}/{name}/"
        auth = {"Authorization": f"Bearer {key}"}
        direct = Target("direct", replica_port, "/", {"X-Floyd-Proxy-Token": env["FLOYD_PROXY_TOKEN"]})
        bridge = Target("bridge", p.bridge_port, path, auth)
        public = Target("public", p.hub_port, path, auth)
        assert requests.get(f"http://127.0.0.1:{p.bridge_port}{path}", headers=auth, timeout=10).text == "ok"

        rounds, per_block = (2, 300) if quick else (10, 1000)
        lat: dict[str, list[float]] = {"direct": [], "bridge": [], "public": []}
        for t in (direct, bridge, public):  # warm-up: connections, pools, caches
            asyncio.run(sequential(t, 200))
        for i in range(rounds):
            for t in [direct, bridge, public] if i % 2 == 0 else [public, bridge, direct]:
                lat[t.label].extend(asyncio.run(sequential(t, per_block)))
        ms = {k: [x * 1000 for x in v] for k, v in lat.items()}
        d50, b50, p50 = (median(ms[k]) for k in ("direct", "bridge", "public"))
        d99, b99, p99 = (pct(ms[k], 99) for k in ("direct", "bridge", "public"))
        log(f"{name} c=1 p50 ms: direct {d50:.3f} bridge {b50:.3f} public {p50:.3f}; "
            f"p99: {d99:.3f} {b99:.3f} {p99:.3f}")
        emit_record(f"serving_added_latency_p50{suffix}", b50 - d50, "direct to the replica (its loopback port, "
                    "keep-alive)", d50, unit="ms", meets_goal=(b50 - d50) <= 0.5, goal_added_ms=0.5,
                    through_bridge_ms=round(b50, 4), through_public_url_ms=round(p50, 4),
                    public_added_ms=round(p50 - d50, 4), requests_per_side=len(ms["direct"]), **common)
        emit_record(f"serving_added_latency_p99{suffix}", b99 - d99, "direct to the replica (its loopback port, "
                    "keep-alive)", d99, unit="ms", through_bridge_ms=round(b99, 4), through_public_url_ms=round(p99, 4),
                    public_added_ms=round(p99 - d99, 4), **common)

        # wrk's rounds (the row), then, when wrk is there, the asyncio client's (python_client_*:
        # the figure before the change of method), each in alternating order
        seconds, trounds, prounds = (2.0, 1, 1) if quick else (8.0, 3, 1)
        generator = load_generator()
        runs = [(generator, trounds)] + ([(PYTHON_CLIENT, prounds)] if generator != PYTHON_CLIENT else [])
        tput: dict[str, dict[str, list[dict]]] = {g: {"direct": [], "bridge": [], "public": []} for g, _ in runs}
        for g, n in runs:
            for i in range(n):
                for t in [direct, bridge, public] if i % 2 == 0 else [public, bridge, direct]:
                    r = throughput(t, 32, seconds, g)
                    tput[g][t.label].append(r)
                    log(f"{name} c=32 {t.label} ({g}): {r}")
        rps = {k: median(r["rps"] for r in v) for k, v in tput[generator].items()}
        errors = sum(r["errors"] for v in tput[generator].values() for r in v)
        ratio = rps["bridge"] / rps["direct"]
        goal = 1.0 if suffix == "_flask" else 0.8  # issue 15: ≥ 0.8× direct on raw ASGI, ≥ 1.0× on Flask
        extra: dict[str, Any] = {}
        if generator != PYTHON_CLIENT:
            py = {k: median(r["rps"] for r in v) for k, v in tput[PYTHON_CLIENT].items()}
            extra = {"python_client_ratio": round(py["bridge"] / py["direct"], 4),
                     "python_client_rps": {k: round(v, 1) for k, v in py.items()},
                     "python_client_public_ratio": round(py["public"] / py["direct"], 4),
                     "python_client_errors": sum(r["errors"] for v in tput[PYTHON_CLIENT].values() for r in v),
                     "python_client_rounds": prounds}
        emit_record(f"serving_throughput_c32{suffix}", rps["bridge"], "direct to the replica, 32 keep-alive "
                    "connections", rps["direct"], unit="requests/s", meets_goal=ratio >= goal, goal_min_ratio=goal,
                    through_public_url_rps=round(rps["public"], 1), public_ratio=round(rps["public"] / rps["direct"], 4),
                    errors=errors, seconds=seconds, rounds=trounds, load_generator=generator, **extra, **common)
        return public

    def cleanup(self) -> None:
        if self.platform is not None:
            log(f"stopping the platform at {self.platform.url}")
            self.platform.stop()
        try:
            for c in self.dc.containers.list(all=True, filters={"label": f"org.floyd.owner={self.user}"}):
                c.remove(force=True)
        except (docker.errors.APIError, requests.RequestException) as exc:
            log(f"could not remove leftover containers: {exc}")


def bench(base: Path, quick: bool) -> None:
    run_then_cleanup(Bench(base, quick))


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="2×300 sequential requests a side, 2 s of load a side (wrk, then the "
               "asyncio client), two handlers: about a minute",
               keep_help="put the platform under DIR and leave it there", prefix="floyd-bench-serving-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
