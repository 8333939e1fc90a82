"""Who may call an endpoint: an API key of that endpoint, anybody when it is public, or its
owner (or an admin) with a Hub token. Answered from memory for keys (one hash, one lookup);
the Hub is asked only about Hub tokens, and caches its answer. Wrong keys are slowed down per
client address and per endpoint (``KeyBackoff``, ``EndpointKeyBackoff``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from jupyterhub.services.auth import HubAuth
from tornado import httputil
from traitlets import default

from jobs_bridge.auth.backoff import Backoff, lockout_message
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


class KeyBackoff(Backoff):
    """``c.KeyBackoff``: wrong endpoint API keys, per client address (jobs_bridge.auth.backoff)."""


class EndpointKeyBackoff(KeyBackoff):
    """``c.EndpointKeyBackoff``: wrong API keys per endpoint, from any address. It locks the
    endpoint's key holders out too, so it allows more failures by default than one address."""

    @default("max_failures")
    def _default_max_failures(self) -> int:
        return 100


class EndpointGate:
    """The access rule of endpoint requests (the API's own rule is auth.rules.check_access)."""

    def __init__(self, keys: KeyStore, hub_auth: HubAuth, by_address: Backoff | None = None,
                 by_endpoint: Backoff | None = None) -> None:
        self.keys = keys
        self.hub_auth = hub_auth
        self.by_address = KeyBackoff() if by_address is None else by_address  # (an empty one is falsy)
        self.by_endpoint = EndpointKeyBackoff() if by_endpoint is None else by_endpoint
        # Told after each wrong key (the data plane sends a locked-out client's requests here).
        self.on_failure: Callable[[], None] = lambda: None

    async def authorize(self, headers: httputil.HTTPHeaders, ep: ProtectedEndpoint,
                        address: str = "") -> tuple[str, ...]:
        """Which request headers to strip before forwarding (the credentials are not the app's
        business); raises Denied (401/403, 429 after too many wrong keys, 503 when the Hub does
        not answer). ``address`` is the client's (backoff.client_ip)."""
        auth = headers.get("Authorization", "")
        key = headers.get("X-Floyd-Key", "")
        strip: tuple[str, ...] = ()
        if key:
            strip = ("x-floyd-key",)
        elif auth[:7].lower() == "bearer " and auth[7:].strip().startswith("fk_"):
            key, strip = auth[7:].strip(), ("authorization",)
        challenge = {"WWW-Authenticate": 'Bearer realm="floyd"'}
        if key:
            self.refuse_if_locked(ep, address)
            if self.keys.check(key, ep.id):
                return strip
            self.by_address.failed(address)
            self.by_endpoint.failed(str(ep.id))
            self.on_failure()
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

    def refuse_if_locked(self, ep: ProtectedEndpoint, address: str) -> None:
        """429 without looking at the key while the address or the endpoint is locked out."""
        by_address = self.by_address.retry_after(address)
        by_endpoint = self.by_endpoint.retry_after(str(ep.id))
        wait = max(by_address, by_endpoint)
        if wait:
            reasons = ([f"your address {address}"] if by_address else []) + \
                ([f"any address for {ep.owner}/{ep.name}"] if by_endpoint else [])
            raise Denied(429, lockout_message("API keys", wait, reasons), {"Retry-After": str(wait)})
