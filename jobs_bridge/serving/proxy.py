"""``/services/floyd/endpoints/<owner>/<name>/…``: the reverse proxy in front of endpoint replicas.

Latency matters on every line here, so requests to endpoints skip tornado.web (handler
objects, cookies, XSRF, ETags, the access log) and are answered on the HTTP connection
directly: the routing table is memory, an API key check is one hash and one dict lookup,
and upstream connections come from one keep-alive pool. The Hub is asked only when a request
carries a Hub token instead of a key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from typing import Any
from urllib.parse import unquote

from tornado import httputil
from tornado.iostream import StreamClosedError

from jobs_bridge.auth.backoff import client_ip, peer_address
from jobs_bridge.auth.endpoint_gate import Denied, EndpointGate
from jobs_bridge.serving import edge, traffic
from jobs_bridge.serving.router import READY, LiveEndpoint, LiveVersion, Replica, Router
from jobs_bridge.serving.upstream import Response, UpstreamError, UpstreamTimeout, may_resend

log = logging.getLogger("jobs_bridge.serving.proxy")
PIN_RE = re.compile(r"^/v(\d{1,9})(/.*)?$")
# Hop-by-hop headers (RFC 9110 §7.6.1), what the proxy sets itself, and the replica's token.
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "content-length", "x-floyd-proxy-token"})
INLINE_LIMIT = 1 << 20  # answers up to this size are relayed in one write, bigger ones streamed


def route(prefix: str) -> str:
    return prefix.rstrip("/") + r"/endpoints/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$"


class EndpointProxy:
    """A tornado.routing target: called with each complete request to an endpoint."""

    def __init__(self, router: Router, gate: EndpointGate, service_prefix: str) -> None:
        self.router = router
        self.gate = gate
        self.service_prefix = service_prefix.rstrip("/")
        self.path_re = re.compile(route(service_prefix))
        self.tasks: set[asyncio.Task] = set()

    def __call__(self, request: httputil.HTTPServerRequest, path_args: Any = None,
                 path_kwargs: dict[str, bytes] | None = None) -> None:
        # The path as sent (still percent-encoded): the app gets its own part unchanged.
        m = self.path_re.match(request.path)
        if m is None:  # pragma: no cover - the router matched the same pattern
            owner = name = rest = ""
        else:
            owner, name, rest = unquote(m.group("owner")), unquote(m.group("name")), m.group("rest")
        task = asyncio.ensure_future(self.handle(request, owner, name, rest))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def handle(self, request: httputil.HTTPServerRequest, owner: str, name: str, rest: str | None) -> None:
        try:
            ep = self.router.endpoint(owner, name)
            if ep is None:
                if not self.router.loaded:  # the bridge has just started and is still reading its endpoints
                    raise Denied(503, "The Floyd bridge is starting; try again in a few seconds.", {"Retry-After": "2"})
                raise Denied(404, f"No endpoint {owner}/{name}.")
            address = client_ip(request.headers, peer_address(request), self.gate.by_address.forwarded_hops)
            strip = await self.gate.authorize(request.headers, ep, address)
            if ep.edge.checked:  # the endpoint's own limits (serving/edge.py)
                caller = edge.caller_key(request.headers.get("X-Floyd-Key", ""),
                                         request.headers.get("Authorization", ""), address)
                edge.check(ep.edge, ep.rates, f"{owner}/{name}", len(request.body or b""), caller, time.monotonic())
            version, path = self.choose(ep, rest or "/", request.headers)
            replica = version.pick() or await self.hold(ep, version)
            await self.relay(request, ep, version, replica, path, strip)
        except Denied as exc:
            self.send_error(request, exc.status, exc.message, exc.headers)
        except StreamClosedError:
            pass  # the client went away
        except Exception:
            log.exception("Proxying %s %s failed", request.method, request.uri)
            self.send_error(request, 500, "Internal error in the Floyd bridge's proxy.")

    async def hold(self, ep: LiveEndpoint, version: LiveVersion) -> Replica:
        """No replica is ready: wait (bounded) while one starts if the version scales to zero."""
        if not ep.can_answer(version) or ep.policy is None:
            raise Denied(503, f"No replica of {ep.owner}/{ep.name} v{version.number} is ready right now (restarting); "
                              "try again in a few seconds.", {"Retry-After": "2"})
        if version.waiting >= self.router.cold_queue_limit:
            raise Denied(503, f"{ep.owner}/{ep.name} v{version.number} is starting from zero replicas and already "
                              f"holds {version.waiting} requests; try again in a few seconds.", {"Retry-After": "5"})
        version.waiting += 1
        deadline = time.monotonic() + self.router.cold_start_timeout
        try:
            self.router.wake(ep, version)
            while (replica := version.pick()) is None:
                left = deadline - time.monotonic()
                if left <= 0 or version.state != READY:
                    raise Denied(503, f"{ep.owner}/{ep.name} v{version.number} was at zero replicas and none got "
                                      f"ready within {self.router.cold_start_timeout:g} s; try again shortly.",
                                 {"Retry-After": "5"})
                version.warm.clear()
                try:
                    await asyncio.wait_for(version.warm.wait(), left)
                except asyncio.TimeoutError:
                    pass
            return replica
        finally:
            version.waiting -= 1

    def choose(self, ep: LiveEndpoint, rest: str,
               headers: httputil.HTTPHeaders | None = None) -> tuple[LiveVersion, str]:
        m = PIN_RE.match(rest)
        if m is None and ep.split:  # a traffic split (serving/traffic.py), sticky per client key
            client = headers.get(self.router.sticky_header) if headers is not None else None
            number = traffic.pick(ep.weights(), client, random.random())
            if number is not None:
                return ep.versions[number], rest
        if m is None:
            latest = ep.latest()
            if latest is None:
                raise Denied(503, f"{ep.owner}/{ep.name} has no ready version; deploy one with "
                                  f"`floyd deploy {ep.name}` (or wait for the deploy in progress).",
                             {"Retry-After": "5"})
            return latest, rest
        number = int(m.group(1))
        version = ep.versions.get(number)
        if version is None:
            raise Denied(404, f"{ep.owner}/{ep.name} has no version {number}.")
        if version.state != READY:
            raise Denied(503, f"Version {number} of {ep.owner}/{ep.name} is {version.state}; it takes no requests. "
                              f"Call the endpoint without /v{number}/ for the newest ready version.")
        return version, m.group(2) or "/"

    def upstream_headers(self, request: httputil.HTTPServerRequest, ep: LiveEndpoint, version: LiveVersion,
                         strip: tuple[str, ...]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        forwarded = proto = host = ""
        for k, v in request.headers.get_all():
            lk = k.lower()
            if lk in HOP or lk in strip:
                continue
            if lk == "cookie":  # the Hub's own cookies are not the app's business
                v = "; ".join(c for c in v.split("; ") if not c.lstrip().startswith(("jupyterhub-", "_xsrf")))
                if not v:
                    continue
            elif lk == "x-forwarded-for":
                forwarded = v
                continue
            elif lk == "x-forwarded-proto":
                proto = v
            elif lk == "x-forwarded-host":
                host = v
            out.append((k, v))
        # Behind configurable-http-proxy the header already names the client (and the bridge's
        # xheaders made it remote_ip): pass it on as it is rather than naming the client twice.
        out.append(("X-Forwarded-For", forwarded or str(request.remote_ip)))
        if not proto:
            out.append(("X-Forwarded-Proto", request.protocol))
        if not host:
            out.append(("X-Forwarded-Host", request.host))
        out.append(("X-Forwarded-Prefix", f"{self.service_prefix}/endpoints/{ep.owner}/{ep.name}"))
        out.append(("X-Floyd-Proxy-Token", version.token))
        return out

    async def relay(self, request: httputil.HTTPServerRequest, ep: LiveEndpoint, version: LiveVersion,
                    replica: Replica, path: str, strip: tuple[str, ...]) -> None:
        headers = self.upstream_headers(request, ep, version, strip)
        target = path + (f"?{request.query}" if request.query else "")
        method, body = request.method or "GET", request.body or None
        timeout = edge.timeout(ep.edge, self.router.request_timeout)
        started = time.perf_counter()
        status = 502
        version.begin(replica)
        try:
            try:
                resp = await self.router.pool.request(replica.host, replica.port, method, target, headers, body,
                                                      INLINE_LIMIT, timeout)
            except UpstreamError as exc:
                other = version.pick(exclude=replica) if may_resend(exc, method) else None
                if other is None:
                    raise
                # Nothing reached that replica (it is restarting), or it broke off (its machine
                # went away) before answering a request that may be sent twice: another answers.
                version.end(replica)
                replica = other
                version.begin(replica)
                resp = await self.router.pool.request(replica.host, replica.port, method, target, headers, body,
                                                      INLINE_LIMIT, timeout)
            status = resp.status
            await self.answer(request, resp)
        except UpstreamTimeout:
            status = 504
            version.stats.failed += 1
            self.send_error(request, 504, f"{ep.owner}/{ep.name} did not answer within {timeout:g} s.")
        except UpstreamError as exc:
            status = 502 if exc.sent else 503
            version.stats.failed += 1
            self.send_error(request, status, f"{ep.owner}/{ep.name} v{version.number} "
                            + ("broke off without a complete answer." if exc.sent
                               else "could not be reached; try again in a few seconds."),
                            {} if exc.sent else {"Retry-After": "2"})
        finally:
            version.end(replica)
            version.stats.record(status, time.perf_counter() - started, time.time())

    async def answer(self, request: httputil.HTTPServerRequest, resp: Response) -> None:
        head = request.method == "HEAD"
        out = httputil.HTTPHeaders()
        for k, v in resp.headers:
            lk = k.lower()
            if lk in HOP and not (lk == "content-length" and (head or resp.streaming)):
                continue
            out.add(k, v)
        conn = request.connection
        assert conn is not None
        start = httputil.ResponseStartLine("HTTP/1.1", resp.status, resp.reason or "Unknown")
        if not resp.streaming:
            if not head and resp.status not in (204, 304):
                out["Content-Length"] = str(len(resp.body))
            conn.write_headers(start, out, resp.body or None)
            conn.finish()
            return
        conn.write_headers(start, out)
        async for chunk in resp.chunks():
            await conn.write(chunk)
        conn.finish()

    def send_error(self, request: httputil.HTTPServerRequest, status: int, message: str,
                   headers: dict[str, str] | None = None) -> None:
        """The platform's one error body (only while no part of an answer went out)."""
        conn = request.connection
        if conn is None or getattr(conn, "_response_start_line", None) is not None:
            return
        body = json.dumps({"status": status, "message": message}).encode()
        out = httputil.HTTPHeaders({"Content-Type": "application/json; charset=UTF-8",
                                    "Content-Length": str(len(body)), **(headers or {})})
        reason = httputil.responses.get(status, "Unknown")
        try:
            conn.write_headers(httputil.ResponseStartLine("HTTP/1.1", status, reason), out, body)
            conn.finish()
        except StreamClosedError:
            pass
