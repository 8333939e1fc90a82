"""Limits at the edge of an endpoint: request body size, request timeout, requests per second
per key. Checked by the proxy before a request reaches a replica; 413, 504 (the proxy's timeout)
and 429 with ``Retry-After`` are the answers, as the platform's one JSON error body."""

from __future__ import annotations

import math
from dataclasses import dataclass

from floyd.formatting import fmt_bytes
from jobs_bridge.auth.endpoint_gate import Denied

MAX_BUCKETS = 10_000  # callers remembered per endpoint; full (idle) buckets are forgotten first


@dataclass(frozen=True)
class EdgeLimits:
    """One endpoint's limits; None means the platform's own (max_json_bytes, request_timeout)."""

    max_body_bytes: int | None = None
    timeout: float | None = None
    rate: float | None = None  # requests per second per key (burst: one second's worth)

    @property
    def checked(self) -> bool:
        """Whether a request has anything to be checked against (else the proxy skips ``check``)."""
        return self.max_body_bytes is not None or bool(self.rate)


class RateLimiter:
    """Token buckets per caller key: ``rate`` tokens a second, at most ``max(1, rate)`` saved."""

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, rate: float, now: float) -> float:
        """0 when the request may pass (a token is spent), else the seconds until it could."""
        burst = max(1.0, rate)
        tokens, last = self.buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= 1.0:
            self.buckets[key] = (tokens - 1.0, now)
            if len(self.buckets) > MAX_BUCKETS:
                self._forget(now, rate)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate

    def _forget(self, now: float, rate: float) -> None:
        burst = max(1.0, rate)
        for k, (tokens, last) in list(self.buckets.items()):
            if tokens + (now - last) * rate >= burst:
                del self.buckets[k]


def check(limits: EdgeLimits, rates: RateLimiter, name: str, body_size: int, caller: str, now: float) -> None:
    """Raise Denied (413 or 429) when a request to ``name`` passes a limit."""
    if limits.max_body_bytes is not None and body_size > limits.max_body_bytes:
        raise Denied(413, f"{name} accepts request bodies of at most {fmt_bytes(limits.max_body_bytes)} "
                          f"({limits.max_body_bytes} bytes); this one has {body_size}.")
    if limits.rate:
        wait = rates.take(caller, limits.rate, now)
        if wait:
            retry = max(1, math.ceil(wait))
            raise Denied(429, f"{name} takes at most {limits.rate:g} request(s) per second per key; "
                              f"try again in {retry} s.", {"Retry-After": str(retry)})


def timeout(limits: EdgeLimits, platform: float) -> float:
    """Seconds a request may wait for its answer to start (0: no limit): the shorter of the two."""
    if limits.timeout and platform:
        return min(limits.timeout, platform)
    return limits.timeout or platform


def caller_key(headers_key: str, authorization: str, address: str) -> str:
    """Whom a rate limit counts: the API key sent, else the client's address."""
    if headers_key:
        return "k:" + headers_key
    if authorization[:7].lower() == "bearer " and authorization[7:].strip().startswith("fk_"):
        return "k:" + authorization[7:].strip()
    return "a:" + address
