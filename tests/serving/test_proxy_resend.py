"""Both endpoint proxies in front of two replicas, one of which breaks off every request it gets
(its machine went away mid-request): a request that may be sent twice is answered by the other
replica, a POST or PATCH is not sent again (the replica may have acted on it) and gets the 502.

The fronts are the bridge's own proxy (router, upstream pool) and HAProxy with the data plane's
rendered configuration; the replicas are two small asyncio servers on loopback ports, so which
replica got which request is exactly known."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

import pytest
from jupyterhub.services.auth import HubAuth
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.routing import PathMatches, Rule, RuleRouter

from jobs_bridge.auth.endpoint_gate import EndpointGate
from jobs_bridge.serving.dataplane import config
from jobs_bridge.serving.dataplane.haproxy import HAProxyProcess
from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.proxy import EndpointProxy, route
from jobs_bridge.serving.router import READY, LiveEndpoint, LiveVersion, Replica, Router
from tests.support.inprocess_proxy import OneKey
from tests.support.loops import run_apart
from tests.support.platform import free_port

PREFIX = "/services/floyd/"
METHODS = ("GET", "PUT", "DELETE", "HEAD", "POST", "PATCH")


async def read_request(reader: asyncio.StreamReader) -> str:
    """One request's method (its body read and dropped); "" at the end of the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return head.split(b" ", 1)[0].decode()


class Replicas:
    """A replica that answers 200 and one that closes the connection on every request."""

    def __init__(self) -> None:
        self.got: Counter[tuple[str, str]] = Counter()  # (replica, method) → requests received

    async def answering(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                self.got["good", await read_request(reader)] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()  # the proxy's pool closed it, or the test's loop ends

    async def breaking(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.got["broken", await read_request(reader)] += 1
        finally:
            writer.transport.abort()  # a reset, as when the replica's machine goes away


async def exercise(url: str, replicas: Replicas) -> AsyncHTTPClient:
    """Three requests of each method in a row (round robin gives the broken replica one of
    them at least); each answer checked against the replicas that request reached."""
    client = AsyncHTTPClient(force_instance=True)
    broken_first: Counter[str] = Counter()
    for method in [m for m in METHODS for _ in range(3)]:
        before = replicas.got.copy()
        body = b"{}" if method in ("PUT", "POST", "PATCH") else None
        resp = await client.fetch(url, method=method, body=body, raise_error=False)
        reached = replicas.got - before
        if reached["broken", method]:
            broken_first[method] += 1
        if method in ("POST", "PATCH"):  # not sent twice: the replica broke off, so does the answer
            assert reached["broken", method] + reached["good", method] == 1, (method, reached)
            assert resp.code == (502 if reached["broken", method] else 200), (method, reached)
            if resp.code == 502:
                assert b"broke off without a complete answer" in resp.body
        else:  # broken off, then answered by the other replica
            assert resp.code == 200 and reached["good", method] == 1, (method, resp.code, reached)
    assert all(broken_first[m] for m in METHODS), broken_first
    return client


def test_the_bridge_sends_again_only_what_may_be_sent_twice() -> None:
    async def scenario() -> None:
        replicas = Replicas()
        good_port, broken_port, proxy_port = free_port(), free_port(), free_port()
        servers = [await asyncio.start_server(replicas.answering, "127.0.0.1", good_port),
                   await asyncio.start_server(replicas.breaking, "127.0.0.1", broken_port)]
        router = Router()
        ep = router.add_endpoint(LiveEndpoint(id=1, owner="a", name="svc", public=True))
        version = LiveVersion(id=1, number=1, state=READY, stats=VersionStats(1), token="t",
                              replicas=[Replica(index=0, port=good_port, ready=True, state="ready"),
                                        Replica(index=1, port=broken_port, ready=True, state="ready")])
        router.add_version(ep, version)
        router.loaded = True
        gate = EndpointGate(OneKey("unused"), HubAuth(api_token="unused"))  # type: ignore[arg-type]
        server = HTTPServer(RuleRouter([Rule(PathMatches(route(PREFIX)), EndpointProxy(router, gate, PREFIX))]))
        server.listen(proxy_port, "127.0.0.1")
        url = f"http://127.0.0.1:{proxy_port}{PREFIX}endpoints/a/svc/"
        client = None
        try:
            client = await exercise(url, replicas)
            assert version.stats.in_flight == 0 and all(r.in_flight == 0 for r in version.replicas)
            # With no other ready replica, a GET the replica broke off is the 502 it was.
            version.replicas[0].ready = False
            sent_before = replicas.got["broken", "GET"]
            resp = await client.fetch(url, raise_error=False)
            assert resp.code == 502 and replicas.got["broken", "GET"] == sent_before + 1
        finally:
            if client is not None:
                client.close()
            server.stop()
            router.pool.close()
            for s in servers:
                s.close()

    run_apart(scenario())


def test_haproxy_sends_again_only_what_may_be_sent_twice(tmp_path: Path) -> None:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: run `bash scripts/ensure-system.sh haproxy` (as root), or `make test`")
    good_port, broken_port, proxy_port = free_port(), free_port(), free_port()
    shape = config.Shape(tmp_path, "127.0.0.1", proxy_port, free_port(), PREFIX + "endpoints", 1, 2, 8, 1,
                         log_port=free_port())
    haproxy = HAProxyProcess("haproxy", config.write(shape), tmp_path)
    (tmp_path / "routes.map").write_text("a/svc public:slot0\n")  # a public endpoint's one version

    async def scenario() -> None:
        replicas = Replicas()
        servers = [await asyncio.start_server(replicas.answering, "127.0.0.1", good_port),
                   await asyncio.start_server(replicas.breaking, "127.0.0.1", broken_port)]
        client = None
        try:
            haproxy.apply([f"set server slot0/r{i} addr 127.0.0.1 port {port}" for i, port in
                           ((1, good_port), (2, broken_port))] + [f"set server slot0/r{i} state ready" for i in (1, 2)])
            client = await exercise(f"http://127.0.0.1:{proxy_port}{PREFIX}endpoints/a/svc/", replicas)
        finally:
            if client is not None:
                client.close()
            for s in servers:
                s.close()

    haproxy.start()
    try:
        run_apart(scenario())
    finally:
        haproxy.stop()
