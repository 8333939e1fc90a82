"""Who may call an endpoint: an API key of that endpoint, anybody when it is public, or its
owner (or an admin) with a Hub token. Answered from memory for keys (one hash, one lookup);
the Hub is asked only about Hub tokens, and caches its answer."""

from __future__ import annotations

import logging
from typing import Protocol

from jupyterhub.services.auth import HubAuth
from tornado import httputil

from jobs_bridge.auth.endpoint_keys import KeyStore

log = logging.getLogger("jobs_bridge.auth.endpoint_gate")


class Denied(Exception):
    """An endpoint request refused before it reaches a replica: status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ProtectedEndpoint(Protocol):
    """What the gate reads of an endpoint (serving.router.LiveEndpoint provides it)."""

    id: int
    owner: str
    name: str
    public: bool


class EndpointGate:
    """The access rule of endpoint requests (the API's own rule is auth.rules.check_access)."""

    def __init__(self, keys: KeyStore, hub_auth: HubAuth) -> None:
        self.keys = keys
        self.hub_auth = hub_auth

    async def authorize(self, headers: httputil.HTTPHeaders, ep: ProtectedEndpoint) -> tuple[str, ...]:
        """Which request headers to strip before forwarding (the credentials are not the app's
        business); raises Denied (401/403, 503 when the Hub does not answer)."""
        auth = headers.get("Authorization", "")
        key = headers.get("X-Floyd-Key", "")
        strip: tuple[str, ...] = ()
        if key:
            strip = ("x-floyd-key",)
        elif auth[:7].lower() == "bearer " and auth[7:].strip().startswith("fk_"):
            key, strip = auth[7:].strip(), ("authorization",)
        challenge = {"WWW-Authenticate": 'Bearer realm="floyd"'}
        if key:
            if self.keys.check(key, ep.id):
                return strip
            raise Denied(401, f"This API key is not valid for {ep.owner}/{ep.name}: it was revoked, has expired, "
                              "or belongs to another endpoint.", challenge)
        if ep.public:  # a Hub token sent along anyway is not the app's business either
            return strip + (("authorization",) if auth[:6].lower() == "token " else ())
        scheme, _, token = auth.partition(" ")
        if token and scheme.lower() in ("token", "bearer"):
            # The owner (or an admin) with a Hub API token (HubAuth caches the answer).
            try:
                user = await self.hub_auth.user_for_token(token.strip(), use_cache=True, sync=False)
            except Exception:
                log.exception("Asking JupyterHub about a token failed")
                raise Denied(503, "JupyterHub did not answer; try again shortly, or use an API key.") from None
            if user and user.get("kind", "user") == "user" and (user.get("name") == ep.owner or user.get("admin")):
                return ("authorization",)
            if user:
                raise Denied(403, f"{user.get('name')} is not the owner of {ep.owner}/{ep.name}; call it with one "
                                  "of its API keys.")
        raise Denied(401, f"{ep.owner}/{ep.name} needs an API key: send 'Authorization: Bearer fk_…' or "
                          f"'X-Floyd-Key: fk_…' (its owner creates one with `floyd endpoint keys create {ep.name}`).",
                     challenge)
