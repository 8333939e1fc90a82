"""An HAProxy endpoint data plane of the shape docs/serving.md ("Proxy") proposes, for the spike's
test and benchmark (tests/serving_runtime/test_haproxy_dataplane.py, benchmarks/proxy_dataplane.py).

HAProxy answers ``/services/floyd/endpoints/<owner>/<name>/…`` itself only when the request's API
key hashes (``sha2(256)``) to an entry of the key map naming that endpoint and the route map sends
the endpoint to a slot backend; everything else (no key, a wrong or revoked key, a Hub token, an
endpoint the route map leaves out) goes to the ``bridge`` backend, where the bridge's own proxy
answers as it does today; so do pinned ``/vN/`` paths. Everything the bridge changes goes through the runtime API on a unix
socket (``add map``/``del map``/``set server``), so no change needs a reload. Not product code:
the bridge does not start HAProxy (yet); see docs/serving.md.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from pathlib import Path

PREFIX = "/services/floyd/endpoints"
CONFIG = """global
    nbthread 1
    maxconn 4096
    stats socket {state}/admin.sock mode 600 level admin

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s

frontend endpoints
    bind 127.0.0.1:{port}
    # /services/floyd/endpoints/<owner>/<name>/...: fields 5 and 6 of the path
    http-request set-var(txn.ep) path,field(5,/,2)
    http-request set-var(txn.key) req.hdr(x-floyd-key) if {{ req.hdr(x-floyd-key) -m found }}
    http-request set-var(txn.key) req.hdr(authorization),field(2,\\ ) if !{{ var(txn.key) -m found }} {{ req.hdr(authorization) -m reg -i ^bearer\\ fk_ }}
    http-request set-var(txn.kh) var(txn.key),sha2(256),hex,lower if {{ var(txn.key) -m found }}
    http-request set-var(txn.kep) var(txn.kh),map({state}/keys.map) if {{ var(txn.kh) -m found }}
    acl key_ok var(txn.kep),strcmp(txn.ep) eq 0
    # a pinned version (/vN/...) is the bridge's to answer, as are splits: the route map leaves those out
    acl pinned path_reg ^{prefix}/[^/]+/[^/]+/v[0-9]+(/|$)
    http-request set-var(txn.be) var(txn.ep),map({state}/routes.map) if key_ok !pinned
    # requests per second per key (the edge's rate limit), counted only on the fast path
    http-request track-sc0 var(txn.kh) table keyrates if key_ok !pinned {{ var(txn.be) -m found }}
    use_backend %[var(txn.be)] if key_ok !pinned {{ var(txn.be) -m found }}
    default_backend bridge

backend keyrates
    stick-table type string len 64 size 100k expire 10s store http_req_rate(1s)

backend bridge
    http-reuse always
    server bridge 127.0.0.1:{fallback}
{slots}"""
SLOT = """
backend {name}
    http-reuse always
    http-request set-header X-Forwarded-Prefix {prefix}/%[var(txn.ep)]
    http-request set-path %[path,regsub(^{prefix}/[^/]+/[^/]+/?,/)]
    http-request del-header x-floyd-key
    http-request del-header authorization
    http-request set-header X-Floyd-Proxy-Token %[be_name,map({state}/tokens.map)]
    # the endpoint's edge limits (maps by slot; 0 or absent: none), answered in the platform's JSON
    http-request set-var(txn.maxbody) be_name,map({state}/maxbody.map,0)
    http-request set-var(txn.rps) be_name,map({state}/rates.map,0)
    http-request return status 413 content-type "application/json; charset=UTF-8" lf-string '{{"status": 413, "message": "%[var(txn.ep)] accepts request bodies of at most %[var(txn.maxbody)] bytes; this one has %[req.hdr_val(content-length)]."}}' if {{ var(txn.maxbody) -m int gt 0 }} {{ req.hdr_val(content-length),sub(txn.maxbody) gt 0 }}
    http-request return status 429 content-type "application/json; charset=UTF-8" lf-string '{{"status": 429, "message": "%[var(txn.ep)] takes at most %[var(txn.rps)] request(s) per second per key; try again in 1 s."}}' hdr Retry-After 1 if {{ var(txn.rps) -m int gt 0 }} {{ sc_http_req_rate(0),sub(txn.rps) gt 0 }}
    http-request set-timeout server be_name,map({state}/timeouts.map,300000)
    http-error status 504 content-type "application/json; charset=UTF-8" lf-string '{{"status": 504, "message": "%[var(txn.ep)] did not answer in time."}}'
    server-template r 1-{servers} 127.0.0.1:9 disabled maxconn {maxconn}
"""


def render(state: Path, port: int, fallback: int, slots: int = 4, servers: int = 8, maxconn: int = 16) -> str:
    """The configuration: the frontend, the bridge fallback and ``slots`` backends of ``servers``
    replicas each (a version takes a free slot; ``maxconn`` requests at once per replica)."""
    body = "".join(SLOT.format(name=f"slot{i}", prefix=PREFIX, state=state, servers=servers, maxconn=maxconn)
                   for i in range(slots))
    return CONFIG.format(state=state, port=port, fallback=fallback, slots=body, prefix=PREFIX)


class HAProxy:
    """One ``haproxy`` process in the foreground, driven over its runtime API socket."""

    def __init__(self, state: Path, port: int, fallback: int, **shape: int) -> None:
        self.state, self.port = state, port
        state.mkdir(parents=True, exist_ok=True)
        for name in ("keys.map", "routes.map", "tokens.map", "maxbody.map", "rates.map", "timeouts.map"):
            (state / name).write_text("")
        (state / "haproxy.cfg").write_text(render(state, port, fallback, **shape))
        self.log = open(state / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(state / "haproxy.cfg")], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not (state / "admin.sock").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start:\n{(state / 'haproxy.log').read_text()}")
            time.sleep(0.02)

    def command(self, line: str) -> str:
        """One runtime API command; its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.state / "admin.sock"))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def route(self, endpoint: str, slot: int, token: str, ports: list[int]) -> None:
        """Send ``owner/name`` to slot backend ``slot`` with these replicas and proxy token."""
        self.command(f"add map {self.state}/tokens.map slot{slot} {token}")
        for i, port in enumerate(ports, 1):
            self.command(f"set server slot{slot}/r{i} addr 127.0.0.1 port {port}")
            self.command(f"set server slot{slot}/r{i} state ready")
        self.command(f"add map {self.state}/routes.map {endpoint} slot{slot}")

    def limit(self, slot: int, max_body: int = 0, rate: int = 0, timeout_ms: int = 0) -> None:
        """The edge limits of the endpoint in slot ``slot`` (0: none; the timeout in milliseconds)."""
        for name, value in (("maxbody", max_body), ("rates", rate), ("timeouts", timeout_ms)):
            self.command(f"del map {self.state}/{name}.map slot{slot}")
            if value:
                self.command(f"add map {self.state}/{name}.map slot{slot} {value}")

    def grant(self, key: str, endpoint: str) -> None:
        self.command(f"add map {self.state}/keys.map {hashlib.sha256(key.encode()).hexdigest()} {endpoint}")

    def revoke(self, key: str) -> None:
        self.command(f"del map {self.state}/keys.map {hashlib.sha256(key.encode()).hexdigest()}")

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """``show stat`` by (proxy, server): scur is in flight now, stot requests so far, hrsp_2xx…"""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = (dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line)
        return {(r["pxname"], r["svname"]): r for r in rows}

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks (USER_HZ = 100)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
