"""The platform's HAProxy data plane (jobs_bridge/serving/dataplane) alone, in front of replicas
a benchmark starts itself: the same configuration and the same runtime API commands as in the
bridge, without a bridge (``fallback`` is where anything off the fast path goes).
For benchmarks/proxy_dataplane.py, which weighs it against the bridge's own proxy."""

from __future__ import annotations

import hashlib
from pathlib import Path

from jobs_bridge.serving.dataplane import config
from jobs_bridge.serving.dataplane.haproxy import HAProxyProcess

PREFIX = "/services/floyd/endpoints"


class HAProxy(HAProxyProcess):
    def __init__(self, state: Path, port: int, fallback: int, slots: int = 4, servers: int = 8,
                 maxconn: int = 64) -> None:
        shape = config.Shape(state, "127.0.0.1", port, fallback, PREFIX, slots, servers, maxconn, 1, log_port=9)
        super().__init__("haproxy", config.write(shape), state)
        self.port = port
        self.start()

    def route(self, endpoint: str, slot: int, token: str, ports: list[int]) -> None:
        """Send ``owner/name`` (called with a key) to slot ``slot``: these replicas, this proxy token."""
        lines = [f"add map {self.state}/tokens.map slot{slot} {token}"]
        for i, port in enumerate(ports, 1):
            lines += [f"set server slot{slot}/r{i} addr 127.0.0.1 port {port}", f"set server slot{slot}/r{i} state ready"]
        self.apply(lines + [f"add map {self.state}/routes.map {endpoint} key:slot{slot}"])

    def grant(self, key: str, endpoint: str) -> None:
        self.apply([f"add map {self.state}/keys.map {hashlib.sha256(key.encode()).hexdigest()} {endpoint}"])

    def revoke(self, key: str) -> None:
        self.apply([f"del map {self.state}/keys.map {hashlib.sha256(key.encode()).hexdigest()}"])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid
