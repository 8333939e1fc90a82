"""``/services/floyd/endpoints/<owner>/<name>/…``: the reverse proxy in front of endpoint replicas.

Latency matters on every line here: the routing table is memory, an API key check is one hash
and one dict lookup, and upstream connections come from one keep-alive pool (a new TCP
connection per request costs about as much as everything else together). The Hub is asked
only when a request carries a Hub token or cookie instead of a key.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
from multidict import CIMultiDict
from tornado import web
from tornado.iostream import StreamClosedError
from yarl import URL

from jobs_bridge.serving.router import READY, LiveEndpoint, LiveVersion, Replica

PIN_RE = re.compile(r"^/v(\d{1,9})(/.*)?$")
# Hop-by-hop headers (RFC 9110 §7.6.1) and what the proxy sets itself.
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "content-length", "x-floyd-proxy-token"})
SKIP_AUTO = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
INLINE_LIMIT = 1 << 20  # answers up to this size are relayed in one write, bigger ones streamed


class EndpointProxyHandler(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def check_xsrf_cookie(self) -> None:
        # Writes are authorized by API keys or tokens in headers, never by the Hub cookie alone
        # (see _authorize), so a cross-site form cannot act for the owner.
        return

    async def get(self, owner: str, name: str, rest: str | None = None) -> None:
        await self.forward(owner, name, rest)

    async def head(self, owner: str, name: str, rest: str | None = None) -> None:
        await self.forward(owner, name, rest)

    async def post(self, owner: str, name: str, rest: str | None = None) -> None:
        await self.forward(owner, name, rest)

    async def put(self, owner: str, name: str, rest: str | None = None) -> None:
        await self.forward(owner, name, rest)

    async def patch(self, owner: str, name: str, rest: str | None = None) -> None:
        await self.forward(owner, name, rest)

    async def delete(self, owner: str, name: str, rest: str | None = None) -> None:
        await self.forward(owner, name, rest)

    async def options(self, owner: str, name: str, rest: str | None = None) -> None:
        await self.forward(owner, name, rest)

    # -- the request path ----------------------------------------------------------------
    async def forward(self, owner: str, name: str, rest: str | None) -> None:
        bridge = self.settings["bridge"]
        ep = bridge.router.endpoint(owner, name)
        if ep is None:
            return self.fail(404, f"No endpoint {owner}/{name}.")
        strip = await self._authorize(ep)
        if strip is None:
            return
        version, path = self._choose(ep, rest or "/")
        if version is None:
            return
        replica = version.pick()
        if replica is None:
            self.set_header("Retry-After", "2")
            return self.fail(503, f"No replica of {owner}/{name} v{version.number} is ready right now (restarting); "
                                  "try again in a few seconds.")
        await self._relay(ep, version, replica, path, strip)

    def _choose(self, ep: LiveEndpoint, rest: str) -> tuple[LiveVersion | None, str]:
        m = PIN_RE.match(rest)
        if m is None:
            latest = ep.latest()
            if latest is None:
                self.set_header("Retry-After", "5")
                self.fail(503, f"{ep.owner}/{ep.name} has no ready version; deploy one with "
                               f"`floyd deploy {ep.name}` (or wait for the deploy in progress).")
            return latest, rest
        number = int(m.group(1))
        version = ep.versions.get(number)
        if version is None:
            self.fail(404, f"{ep.owner}/{ep.name} has no version {number}.")
            return None, ""
        if version.state != READY:
            self.fail(503, f"Version {number} of {ep.owner}/{ep.name} is {version.state}; it takes no requests. "
                           f"Call the endpoint without /v{number}/ for the newest ready version.")
            return None, ""
        return version, m.group(2) or "/"

    async def _authorize(self, ep: LiveEndpoint) -> list[str] | None:
        """Headers to strip before forwarding, or None when a response (401/403) was sent."""
        headers = self.request.headers
        auth = headers.get("Authorization", "")
        key, strip = headers.get("X-Floyd-Key", ""), []
        if key:
            strip.append("x-floyd-key")
        elif auth[:7].lower() == "bearer " and auth[7:].strip().startswith("fk_"):
            key = auth[7:].strip()
            strip.append("authorization")
        bridge = self.settings["bridge"]
        if key:
            if bridge.keys.check(key, ep.id):
                return strip
            self.set_header("WWW-Authenticate", 'Bearer realm="floyd"')
            self.fail(401, f"This API key is not valid for {ep.owner}/{ep.name}: it was revoked, has expired, or "
                           "belongs to another endpoint.")
            return None
        if ep.public:
            return strip
        # The owner (or an admin) with a Hub token; with the Hub cookie only for safe methods.
        if auth or (self.request.method in SAFE_METHODS and self.get_cookie(self.settings["hub_auth"].cookie_name)):
            try:
                user = await self.settings["hub_auth"].get_user(self, sync=False)
            except Exception:
                user = None
            if user and user.get("kind", "user") == "user" and (user.get("name") == ep.owner or user.get("admin")):
                return strip + (["authorization"] if auth else [])
            if user:
                self.fail(403, f"{user.get('name')} is not the owner of {ep.owner}/{ep.name}; call it with one of "
                               "its API keys.")
                return None
        self.set_header("WWW-Authenticate", 'Bearer realm="floyd"')
        self.fail(401, f"{ep.owner}/{ep.name} needs an API key: send 'Authorization: Bearer fk_…' or "
                       f"'X-Floyd-Key: fk_…' (its owner creates one with `floyd endpoint keys create {ep.name}`).")
        return None

    def _upstream_headers(self, ep: LiveEndpoint, strip: list[str]) -> CIMultiDict:
        req = self.request
        out: CIMultiDict = CIMultiDict()
        for k, v in req.headers.get_all():
            lk = k.lower()
            if lk in HOP or lk in strip:
                continue
            if lk == "cookie":  # the Hub's own cookies are not the app's business
                v = "; ".join(c for c in v.split("; ") if not c.lstrip().startswith(("jupyterhub-", "_xsrf")))
                if not v:
                    continue
            out.add(k, v)
        forwarded = req.headers.get("X-Forwarded-For")
        out["X-Forwarded-For"] = f"{forwarded}, {req.remote_ip}" if forwarded else str(req.remote_ip)
        out.setdefault("X-Forwarded-Proto", req.protocol)
        out.setdefault("X-Forwarded-Host", req.host)
        out["X-Forwarded-Prefix"] = f"{self.settings['bridge'].service_prefix.rstrip('/')}/endpoints/{ep.owner}/{ep.name}"
        return out

    async def _relay(self, ep: LiveEndpoint, version: LiveVersion, replica: Replica, path: str,
                     strip: list[str]) -> None:
        router = self.settings["bridge"].router
        req = self.request
        headers = self._upstream_headers(ep, strip)
        headers["X-Floyd-Proxy-Token"] = version.token
        body = req.body or None
        started = time.perf_counter()
        status = 502
        version.begin(replica)
        try:
            for attempt in (0, 1):
                url = URL(replica.base_url + path + (f"?{req.query}" if req.query else ""), encoded=True)
                try:
                    async with router.session.request(req.method, url, data=body, headers=headers,
                                                      allow_redirects=False, skip_auto_headers=SKIP_AUTO) as resp:
                        status = resp.status
                        await self._answer(resp)
                    return
                except aiohttp.ClientConnectorError:
                    # Nothing reached the replica (it is restarting): another one may answer.
                    other = version.pick(exclude=replica) if attempt == 0 else None
                    if other is None:
                        status = 503
                        self.set_header("Retry-After", "2")
                        return self.fail(503, f"{ep.owner}/{ep.name} v{version.number} could not be reached; "
                                              "try again in a few seconds.")
                    version.end(replica)
                    replica = other
                    version.begin(replica)
                except asyncio.TimeoutError:
                    status = 504
                    return self.fail(504, f"{ep.owner}/{ep.name} did not answer within "
                                          f"{router.request_timeout:g} s.")
                except (aiohttp.ClientError, StreamClosedError) as exc:
                    status = 502
                    if not self._headers_written:
                        return self.fail(502, f"{ep.owner}/{ep.name} v{version.number} closed the connection "
                                              f"without a complete answer ({type(exc).__name__}).")
                    return
        finally:
            version.end(replica)
            version.stats.record(status, time.perf_counter() - started, time.time())

    async def _answer(self, resp: aiohttp.ClientResponse) -> None:
        self.set_status(resp.status, resp.reason or "Unknown")
        self.clear_header("Content-Type")
        seen: set[str] = set()
        for k, v in resp.headers.items():
            lk = k.lower()
            if lk in HOP and not (lk == "content-length" and self.request.method == "HEAD"):
                continue
            if lk in seen:
                self.add_header(k, v)
            else:
                self.set_header(k, v)
                seen.add(lk)
        if self.request.method == "HEAD" or resp.status in (204, 304):
            self.finish()
            return
        length = resp.content_length
        if length is not None and length <= INLINE_LIMIT:
            self.finish(await resp.read())
            return
        async for chunk in resp.content.iter_any():
            self.write(chunk)
            await self.flush()
        self.finish()

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"status": status, "message": message}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = "Internal error in the Floyd bridge's proxy." if status_code >= 500 else self._reason
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"status": status_code, "message": message}))


ROUTE = r"/endpoints/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?"
