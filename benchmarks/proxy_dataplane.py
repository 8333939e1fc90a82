"""Proxy data plane benchmark: what does HAProxy cost in front of an endpoint replica?

The measurement behind docs/serving.md ("Proxy"), which chose HAProxy as the endpoints' data
plane: the proxies alone, without the platform around them (benchmarks/serving.py measures the
platform as it runs). Two replicas run as the bridge starts them (``python -m floyd.container.serving``
with a proxy token), a raw ASGI app and a Flask app answering ``ok``; HAProxy runs with the
platform's own configuration (jobs_bridge/serving/dataplane via tests/support/haproxy.py: the API
key hashed and looked up in a map, the route map, a slot backend that rewrites the path and sets
the proxy token, the bridge as fallback).
Side by side in the same run, direct to the replica vs through HAProxy:
  proxy_dataplane_added_latency_p50[_flask]   concurrency 1, one keep-alive connection a side,
                                              alternating blocks (goal: ≤ 0.5 ms added)
  proxy_dataplane_throughput_c32[_flask]      requests/s with 32 keep-alive connections from
                                              ``wrk -t1 -c32``, alternating rounds (goal: ratio
                                              ≥ 0.8 ASGI, ≥ 1.0 Flask); the asyncio client's
                                              figures, from fewer rounds, beside them (python_client_*)
  proxy_dataplane_cpu_per_request[_flask]     HAProxy's CPU time per request during its wrk rounds
                                              vs the in-process proxy's, with the client's (wrk's)
                                              and the replica's, and the ratio they predict on 2
                                              cores: (client + replica) / (client + replica + proxy);
                                              the asyncio client's own CPU per request beside them
The bridge's own in-process proxy (tests/support/inprocess_proxy.py: the same request path as in
the bridge, alone in a process) is measured beside them, as the baseline of the decision.
Here client, proxy and replica share the machine's cores, as on the platform; the c=32 client is
``wrk`` (benchmarks/loadgen.py), about half the asyncio client's CPU a request, for every side
alike, since the asyncio client's 30 µs or more would weigh on the proxy's side. Without wrk
(``scripts/ensure-system.sh wrk``) the c=32 rows fall back to the asyncio client and say so
(``load_generator``). Needs ``haproxy`` (``scripts/ensure-system.sh haproxy``).
One JSON object per measurement on stdout; logs on stderr.

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
from typing import Any

from common import cli, log, median, process_cpu
from common import emit as emit_record
from loadgen import PYTHON_CLIENT, load_generator
from serving import Target, pct, sequential, throughput

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.haproxy import PREFIX, HAProxy  # noqa: E402
from tests.support.platform import free_port  # noqa: E402
from tests.support.runtime import RuntimeProcess  # noqa: E402
from tests.support.serving import ASGI_OK_APP, FLASK_OK_APP  # noqa: E402

TOKEN = "bench-proxy-token"
KEY = "fk_proxy-dataplane-bench-key"


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

    # wrk's rounds (the rows), then, when wrk is there, the asyncio client's (python_client_*: the
    # figures before the change of method), each side in turn first
    seconds, trounds, prounds = (2.0, 3, 1) if quick else (6.0, 6, 2)
    generator = load_generator()
    runs = [(generator, trounds)] + ([(PYTHON_CLIENT, prounds)] if generator != PYTHON_CLIENT else [])
    rps: dict[str, dict[str, list[float]]] = {g: {t.label: [] for t in sides} for g, _ in runs}
    errors = {g: 0 for g, _ in runs}
    # per generator and proxy: proxy, replica, client CPU s; requests
    cpu = {g: {k: [0.0, 0.0, 0.0, 0] for k in ("haproxy", "bridge")} for g, _ in runs}
    for g, n in runs:
        for i in range(n):
            for t in order(sides, i):
                pid = proxy.pid if t.label == "haproxy" else bridge.proc.pid
                before = (process_cpu(pid), process_cpu(replica.proc.pid), own_cpu())
                r = throughput(t, 32, seconds, g)
                after = (process_cpu(pid), process_cpu(replica.proc.pid), own_cpu())
                rps[g][t.label].append(r["rps"])
                errors[g] += r["errors"]
                log(f"{endpoint} c=32 {t.label} ({g}): {r}")
                if t.label in cpu[g]:
                    client = r["client_cpu_s"] if "client_cpu_s" in r else after[2] - before[2]
                    for j, d in enumerate((after[0] - before[0], after[1] - before[1], client)):
                        cpu[g][t.label][j] += d
                    cpu[g][t.label][3] += r["requests"]
    med = {k: median(v) for k, v in rps[generator].items()}
    goal = 1.0 if suffix else 0.8
    extra: dict[str, Any] = {}
    if generator != PYTHON_CLIENT:
        py = {k: median(v) for k, v in rps[PYTHON_CLIENT].items()}
        extra = {"python_client_ratio": round(py["haproxy"] / py["direct"], 4),
                 "python_client_bridge_proxy_ratio": round(py["bridge"] / py["direct"], 4),
                 "python_client_rps": {k: round(v, 1) for k, v in py.items()},
                 "python_client_errors": errors[PYTHON_CLIENT], "python_client_rounds": prounds}
    emit_record(f"proxy_dataplane_throughput_c32{suffix}", med["haproxy"], "direct to the replica, 32 keep-alive "
                "connections", med["direct"], unit="requests/s", meets_goal=med["haproxy"] / med["direct"] >= goal,
                goal_min_ratio=goal, bridge_proxy_ratio=round(med["bridge"] / med["direct"], 4),
                rounds={k: [round(x) for x in v] for k, v in rps[generator].items()}, seconds=seconds,
                errors=errors[generator], load_generator=generator, **extra, **common)
    us = {k: [x / v[3] * 1e6 for x in v[:3]] for k, v in cpu[generator].items()}
    extra = {}
    if generator != PYTHON_CLIENT:
        v = cpu[PYTHON_CLIENT]["haproxy"]
        extra = {"python_client_us": round(v[2] / v[3] * 1e6, 1)}
    emit_record(f"proxy_dataplane_cpu_per_request{suffix}", us["haproxy"][0], "the bridge's in-process proxy's CPU "
                "per request", us["bridge"][0], unit="µs", replica_us=round(us["haproxy"][1], 1),
                client_us=round(us["haproxy"][2], 1),
                projected_ratio=round((us["haproxy"][1] + us["haproxy"][2]) / sum(us["haproxy"]), 3),
                load_generator=generator, **extra, **common)


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
    return cli(bench, __doc__, quick_help="3×300 sequential requests and 3×2 s of wrk load (then 1×2 s "
               "of the asyncio client's) a side, two handlers: about a minute",
               keep_help="put the state (HAProxy's configuration and log) under DIR and leave it",
               prefix="floyd-bench-proxy-dataplane-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
