"""Proxy data plane benchmark: what does HAProxy cost in front of an endpoint replica?

The spike behind docs/serving.md ("Proxy"): before the bridge hands its endpoint path to a C
proxy, measure that proxy alone, the way benchmarks/serving.py measures the bridge's in-process
one. Two replicas run as the bridge starts them (``python -m floyd.container.serving`` with a
proxy token), a raw ASGI app and a Flask app answering ``ok``; HAProxy runs with the data plane's
configuration (tests/support/haproxy.py: the API key hashed and looked up in a map, the route
map, a slot backend that rewrites the path and sets the proxy token, the bridge as fallback).
Side by side in the same run, direct to the replica vs through HAProxy:
  proxy_dataplane_added_latency_p50[_flask]   concurrency 1, one keep-alive connection a side,
                                              alternating blocks (goal: ≤ 0.5 ms added)
  proxy_dataplane_throughput_c32[_flask]      requests/s with 32 keep-alive connections,
                                              alternating rounds (goal: ratio ≥ 0.8 ASGI, ≥ 1.0 Flask)
  proxy_dataplane_cpu_per_request[_flask]     HAProxy's CPU time per request during its c=32 rounds
                                              vs the in-process proxy's, with the client's and the
                                              replica's, and the ratio they predict on 2 cores:
                                              (client + replica) / (client + replica + proxy)
The bridge's own in-process proxy (tests/support/inprocess_proxy.py: the same request path as in
the bridge, alone in a process) is measured beside them, as the baseline of the decision.
Here client, proxy and replica share the machine's cores, as on the platform. Needs ``haproxy``
(``scripts/ensure-system.sh haproxy``). One JSON object per measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/proxy_dataplane.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import cli, log, median
from common import emit as emit_record
from serving import Target, closed_loop, pct, sequential

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.haproxy import PREFIX, HAProxy  # noqa: E402
from tests.support.platform import free_port  # noqa: E402
from tests.support.runtime import RuntimeProcess  # noqa: E402
from tests.support.serving import ASGI_OK_APP, FLASK_OK_APP  # noqa: E402

TOKEN = "bench-proxy-token"
KEY = "fk_proxy-dataplane-bench-key"


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc; USER_HZ = 100)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class InProcess:
    """The bridge's own proxy alone in front of one replica (tests/support/inprocess_proxy.py)."""

    def __init__(self, replica: RuntimeProcess, endpoint: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.inprocess_proxy", "--port", str(self.port),
                                      "--replica", str(replica.port), "--token", TOKEN, "--key", KEY,
                                      "--endpoint", endpoint], cwd=REPO)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the in-process proxy did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def order(targets: list[Target], i: int) -> list[Target]:
    """Each round in another order, so a drift in the machine's load spreads over all sides."""
    k = i % len(targets)
    return targets[k:] + targets[:k]


def measure(proxy: HAProxy, replica: RuntimeProcess, endpoint: str, suffix: str, quick: bool,
            common: dict) -> None:
    bridge = InProcess(replica, endpoint)
    try:
        measure_sides(proxy, bridge, replica, endpoint, suffix, quick, common)
    finally:
        bridge.stop()


def measure_sides(proxy: HAProxy, bridge: InProcess, replica: RuntimeProcess, endpoint: str, suffix: str,
                  quick: bool, common: dict) -> None:
    path, auth = f"{PREFIX}/{endpoint}/", {"Authorization": f"Bearer {KEY}"}
    sides = [Target("direct", replica.port, "/", {"X-Floyd-Proxy-Token": TOKEN}),
             Target("haproxy", proxy.port, path, auth), Target("bridge", bridge.port, path, auth)]
    for t in sides:  # warm-up: connections, caches
        asyncio.run(sequential(t, 200))
    rounds, per_block = (3, 300) if quick else (9, 1000)
    lat: dict[str, list[float]] = {t.label: [] for t in sides}
    for i in range(rounds):
        for t in order(sides, i):
            lat[t.label].extend(x * 1000 for x in asyncio.run(sequential(t, per_block)))
    p50 = {k: median(v) for k, v in lat.items()}
    log(f"{endpoint} c=1 p50 ms: {p50}")
    emit_record(f"proxy_dataplane_added_latency_p50{suffix}", p50["haproxy"] - p50["direct"],
                "direct to the replica (keep-alive)", p50["direct"], unit="ms",
                meets_goal=(p50["haproxy"] - p50["direct"]) <= 0.5, goal_added_ms=0.5,
                added_p99_ms=round(pct(lat["haproxy"], 99) - pct(lat["direct"], 99), 4),
                bridge_proxy_added_ms=round(p50["bridge"] - p50["direct"], 4), **common)

    seconds, trounds = (2.0, 3) if quick else (6.0, 6)
    rps: dict[str, list[float]] = {t.label: [] for t in sides}
    cpu = {k: [0.0, 0.0, 0.0, 0] for k in ("haproxy", "bridge")}  # proxy, replica, client CPU s; requests
    for i in range(trounds):
        for t in order(sides, i):
            pid = proxy.proc.pid if t.label == "haproxy" else bridge.proc.pid
            before = (process_cpu(pid), process_cpu(replica.proc.pid), own_cpu())
            r = asyncio.run(closed_loop(t, 32, seconds))
            after = (process_cpu(pid), process_cpu(replica.proc.pid), own_cpu())
            rps[t.label].append(r["rps"])
            log(f"{endpoint} c=32 {t.label}: {r}")
            if t.label in cpu:
                for j in range(3):
                    cpu[t.label][j] += after[j] - before[j]
                cpu[t.label][3] += r["requests"]
    med = {k: median(v) for k, v in rps.items()}
    goal = 1.0 if suffix else 0.8
    emit_record(f"proxy_dataplane_throughput_c32{suffix}", med["haproxy"], "direct to the replica, 32 keep-alive "
                "connections", med["direct"], unit="requests/s", meets_goal=med["haproxy"] / med["direct"] >= goal,
                goal_min_ratio=goal, bridge_proxy_ratio=round(med["bridge"] / med["direct"], 4),
                rounds={k: [round(x) for x in v] for k, v in rps.items()}, seconds=seconds, **common)
    us = {k: [x / v[3] * 1e6 for x in v[:3]] for k, v in cpu.items()}
    emit_record(f"proxy_dataplane_cpu_per_request{suffix}", us["haproxy"][0], "the bridge's in-process proxy's CPU "
                "per request", us["bridge"][0], unit="µs", replica_us=round(us["haproxy"][1], 1),
                client_us=round(us["haproxy"][2], 1),
                projected_ratio=round((us["haproxy"][1] + us["haproxy"][2]) / sum(us["haproxy"]), 3), **common)


def bench(base: Path, quick: bool) -> None:
    if shutil.which("haproxy") is None:
        log("skipped: haproxy is not installed (scripts/ensure-system.sh haproxy, as root)")  # make bench goes on
        return
    common = {"mode": "quick" if quick else "full", "proxy": "haproxy 2.6, 1 thread"}
    replicas: list[RuntimeProcess] = []
    proxy = HAProxy(base / "haproxy", free_port(), free_port())  # no bridge behind it: every request has a key
    try:
        for name, app in (("asgi", ASGI_OK_APP), ("flask", FLASK_OK_APP)):
            code = base / name
            code.mkdir()
            (code / "app.py").write_bytes(app)
            os.environ["FLOYD_PROXY_TOKEN"] = TOKEN  # the replica answers only with it, as on the platform
            replicas.append(RuntimeProcess(code, "app.py", "--log-level", "warning"))
        for slot, (name, replica) in enumerate(zip(("asgi", "flask"), replicas, strict=True)):
            replica.wait_ready(headers={"X-Floyd-Proxy-Token": TOKEN})
            proxy.route(f"bench/{name}", slot, TOKEN, [replica.port])
            proxy.grant(KEY, f"bench/{name}") if slot == 0 else None
        t0 = time.perf_counter()
        measure(proxy, replicas[0], "bench/asgi", "", quick, {**common, "handler": "raw ASGI app.py answering 'ok'"})
        proxy.revoke(KEY)
        proxy.grant(KEY, "bench/flask")
        measure(proxy, replicas[1], "bench/flask", "_flask", quick, {**common, "handler": "Flask app.py answering 'ok'"})
        log(f"measured in {time.perf_counter() - t0:.0f} s")
    finally:
        proxy.stop()
        for r in replicas:
            r.terminate()


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="2×300 sequential requests and 3×2 s of load a side, two handlers: "
               "under a minute", keep_help="put the state (HAProxy's configuration and log) under DIR and leave it",
               prefix="floyd-bench-proxy-dataplane-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
