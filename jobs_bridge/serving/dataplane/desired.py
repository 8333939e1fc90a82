"""What HAProxy should answer itself, computed from the bridge's routing table.

An endpoint is on HAProxy's fast path when a request there needs nothing but a key check, a
path rewrite and a replica: one ready version (no traffic split), at least one ready replica and
no more than a slot holds, no rate limit (the bridge counts those, in one place), and no lock-out
of its keys. Everything else stays with the bridge's own proxy, which can do it all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jobs_bridge.auth.endpoint_keys import KeyGrant
from jobs_bridge.serving import edge
from jobs_bridge.serving.router import LiveEndpoint, LiveVersion, Router
from jobs_bridge.timeutil import utcnow


@dataclass(frozen=True)
class Route:
    endpoint: str  # owner/name, as the path names it
    version: LiveVersion
    servers: tuple[tuple[str, int], ...]  # the ready replicas' (host, port)
    public: bool
    token: str
    max_body: int  # bytes, 0: none
    timeout_ms: int  # 0: none


def route_of(ep: LiveEndpoint, servers_per_slot: int, max_body: int, timeout: float) -> Route | None:
    """The endpoint's fast-path route, or None when the bridge must answer its requests."""
    if ep.split or ep.edge.rate:
        return None
    lv = ep.latest()
    if lv is None:
        return None
    ready = tuple((r.host, r.port) for r in lv.replicas if r.ready)
    if not ready or len(ready) > servers_per_slot:
        return None
    body = ep.edge.max_body_bytes if ep.edge.max_body_bytes is not None else max_body
    seconds = edge.timeout(ep.edge, timeout)
    return Route(f"{ep.owner}/{ep.name}", lv, ready, ep.public, lv.token, body, int(seconds * 1000))


def routes(router: Router, servers_per_slot: int, max_body: int, locked_endpoints: set[str]) -> dict[str, Route]:
    out = {}
    for ep in list(router.endpoints.values()):
        if str(ep.id) in locked_endpoints:
            continue
        r = route_of(ep, servers_per_slot, max_body, router.request_timeout)
        if r is not None:
            out[r.endpoint] = r
    return out


def keys(grants: Iterable[tuple[str, KeyGrant]], router: Router, margin: float) -> dict[str, str]:
    """``sha256 of a live key → owner/name`` of its endpoint; a key that expires within ``margin``
    seconds is left out already (the bridge checks it to the second)."""
    names = {ep.id: f"{ep.owner}/{ep.name}" for ep in list(router.endpoints.values())}
    soon = utcnow().timestamp() + margin
    out = {}
    for digest, grant in grants:
        name = names.get(grant.endpoint_id)
        if name is None or (grant.expires_at is not None and grant.expires_at.timestamp() <= soon):
            continue
        out[digest] = name
    return out
