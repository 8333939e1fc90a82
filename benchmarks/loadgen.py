"""The closed-loop load generator of the throughput rows: ``wrk`` (benchmarks/serving.py,
benchmarks/proxy_dataplane.py).

The asyncio client costs 30 µs or more of CPU a request (benchmarks/proxy_dataplane.py's
``python_client_us``), most of a core at the rates measured here; on a 2-core machine it competes
with the proxy and the replica, so "through the proxy / direct" would say more about the client than
the proxy. ``wrk`` (C, epoll, one thread) costs about half as much (``client_us``: ~16 µs a request
against a raw ASGI replica here) and is the load generator of the c=32 rows when it is installed
(``scripts/ensure-system.sh wrk``); the scripts fall back to their asyncio client, and say so, when
it is not.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
from typing import Any

from common import log

REQUESTS_RE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b", re.MULTILINE)
RPS_RE = re.compile(r"^Requests/sec:\s*([\d.]+)", re.MULTILINE)
NON_2XX_RE = re.compile(r"^\s*Non-2xx or 3xx responses:\s*(\d+)", re.MULTILINE)
SOCKET_RE = re.compile(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE)
UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
PYTHON_CLIENT = "python asyncio"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def load_generator(connections: int = 32) -> str:
    """What a record's ``load_generator`` says: ``wrk -t1 -cN``, or the asyncio client's name
    when wrk is not installed (logged once per call, so a run says why its numbers moved)."""
    if wrk_path() is None:
        log("wrk is not installed (scripts/ensure-system.sh wrk, as root): the c=32 rows fall back to "
            "the Python asyncio client, which shares the cores with what it measures")
        return PYTHON_CLIENT
    return f"wrk -t1 -c{connections}"


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, requests, and errors (non-2xx/3xx answers plus socket errors) from wrk's report."""
    rps, total = RPS_RE.search(out), REQUESTS_RE.search(out)
    if rps is None or total is None:
        raise RuntimeError(f"wrk's report has no Requests/sec:\n{out[-2000:]}")
    non2xx = NON_2XX_RE.search(out)
    sock = SOCKET_RE.search(out)
    socket_errors = sum(int(x) for x in sock.groups()) if sock else 0
    bad = int(non2xx.group(1)) if non2xx else 0
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)), "errors": bad + socket_errors,
            "non_2xx_3xx": bad, "socket_errors": socket_errors,
            "seconds": round(float(total.group(2)) * UNIT_S[total.group(3)], 3)}


def wrk_rps(port: int, path: str, headers: dict[str, str], seconds: float, connections: int = 32) -> dict[str, Any]:
    """``wrk -t1 -c<connections> -d<seconds>s`` at http://127.0.0.1:``port````path`` with ``headers``
    (keep-alive, the next request on a connection as soon as the last one answered).

    Returns ``rps`` (wrk's Requests/sec), ``requests``, ``errors`` (non-2xx/3xx responses + socket
    errors), their split, ``seconds`` as wrk timed them, and ``client_cpu_s``: wrk's CPU time (user
    + system, from the rusage of the children reaped while it ran: wrk alone). wrk counts whole
    seconds; ``seconds`` is rounded, at least 1. A wrk that cannot run (not installed, the target
    refuses connections) raises RuntimeError."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (scripts/ensure-system.sh wrk)")
    secs = max(1, round(seconds))
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{secs}s", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    cpu0 = children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    cpu = children_cpu() - cpu0
    if proc.returncode:
        raise RuntimeError(f"wrk exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
    return {**parse_wrk(proc.stdout), "client_cpu_s": round(cpu, 4)}
