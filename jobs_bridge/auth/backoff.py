"""Back-off after failed credentials: sign-ins at the hub, endpoint API keys at the bridge.

A key (a client address, a user name, an endpoint) that failed ``max_failures`` times within
``window`` seconds is locked: its next attempts are refused with 429 and ``Retry-After``
before any password or key is checked. Each further failure after a lock-out doubles the
lock (``base_delay``, ``2 * base_delay``, … up to ``max_delay``). A success forgets the key;
a key with no failure for ``window`` seconds (and no lock left) is forgotten too, and at most
``max_keys`` keys are kept (the least recently failed go first), so an attacker cannot grow
the table without bound.

Used by the hub (``floyd_hub.auth``) and the bridge (``auth.endpoint_gate``): this module
imports nothing of either. Both call it from their event loop only, so it takes no lock.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tornado import httputil
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

Clock = Callable[[], float]


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0  # time of the last failure
    locked_until: float = 0.0


class Backoff(LoggingConfigurable):
    """Failure counts per key, with growing lock-outs (one instance per kind of key)."""

    max_failures = Integer(
        10, help="Failures within `window` seconds after which a key (client address, user, endpoint) is "
        "locked out: further attempts answer 429 with Retry-After, unchecked. 0 turns the back-off off.",
    ).tag(config=True)
    window = Float(
        600.0, help="Seconds over which failures are counted; a key with no failure for this long (and no "
        "lock-out left) is forgotten.",
    ).tag(config=True)
    base_delay = Float(
        10.0, help="Seconds of the first lock-out; each further failure after it doubles the lock-out.",
    ).tag(config=True)
    max_delay = Float(600.0, help="The longest lock-out, in seconds (the doubling stops there).").tag(config=True)
    forwarded_hops = Integer(
        1, help="Proxies of yours that append to X-Forwarded-For in front of this process: 1 is "
        "configurable-http-proxy alone; add one for each reverse proxy in front of it. The client's address "
        "is the entry that many from the right, so one a client sends itself is never believed.",
    ).tag(config=True)
    max_keys = Integer(
        100_000, help="Most keys remembered at once; beyond it the least recently failed are forgotten, so "
        "memory stays bounded whatever an attacker sends.",
    ).tag(config=True)

    def __init__(self, clock: Clock = time.monotonic, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently failed first

    def __len__(self) -> int:
        return len(self._records)

    def retry_after(self, *keys: str) -> int:
        """Whole seconds until all of ``keys`` may try again; 0 when none is locked."""
        now = self.clock()
        wait = 0.0
        for key in map(short, keys):
            rec = self._records.get(key)
            if rec is not None and rec.locked_until > now:
                wait = max(wait, rec.locked_until - now)
        return math.ceil(wait) if wait else 0

    def locked(self) -> list[str]:
        """The keys locked out now (as stored: a long one by its hash)."""
        now = self.clock()
        return [key for key, rec in self._records.items() if rec.locked_until > now]

    def failed(self, *keys: str) -> None:
        """Count one failure for each key (locking those that reached ``max_failures``)."""
        if self.max_failures <= 0:
            return
        now = self.clock()
        self._expire(now)
        for key in map(short, keys):
            rec = self._records.pop(key, None)
            if rec is None or (now - rec.last > self.window and rec.locked_until <= now):
                rec = _Record()
            rec.failures += 1
            rec.last = now
            over = rec.failures - self.max_failures
            if over >= 0:
                rec.locked_until = now + self.delay(over)
            self._records[key] = rec  # now the most recently failed
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget ``key`` (a user who signed in; never a client address, see docs/admin.md)."""
        self._records.pop(short(key), None)

    def delay(self, over: int) -> float:
        """The lock-out after the failure ``over`` failures past the threshold (0 = the first)."""
        return min(self.max_delay, self.base_delay * 2.0 ** min(over, 64))

    def _expire(self, now: float) -> None:
        """Drop forgotten keys from the old end (the order is that of the last failure)."""
        while self._records:
            key, rec = next(iter(self._records.items()))
            if now - rec.last <= self.window or rec.locked_until > now:
                return
            del self._records[key]


def short(key: str) -> str:
    """Keys as stored: a long one (a made-up user name of a megabyte) by its hash, so each key
    costs the table a bounded amount of memory."""
    return key if len(key) <= 200 else "sha256:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def client_ip(headers: httputil.HTTPHeaders, peer: str, hops: int = 1) -> str:
    """The client's address as the proxies in front saw it.

    configurable-http-proxy appends the address it was connected from to ``X-Forwarded-For``,
    so the right-most entry is the one a client cannot choose (``hops`` > 1 when more proxies
    of yours stand in front, each appending one). Entries a client sent itself stand further
    left and are ignored, and so is ``X-Real-Ip``, which tornado's ``xheaders`` would believe.
    ``peer`` (the socket's address) when there is no such header.
    """
    entries = [e.strip() for e in ",".join(headers.get_list("X-Forwarded-For")).split(",") if e.strip()]
    if not entries:
        return peer
    return entries[-min(max(hops, 1), len(entries))]


def peer_address(request: httputil.HTTPServerRequest) -> str:
    """The socket's remote address (``remote_ip`` may already come from a header)."""
    address = getattr(request.connection, "context", None)
    address = getattr(address, "address", None)
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(request.remote_ip or "")


def lockout_message(what: str, seconds: int, reasons: Iterable[str] = ()) -> str:
    """The 429 message: what was refused, for how long, and what to do."""
    why = " and ".join(reasons) or "this client"
    return (f"Too many failed {what} from {why}; try again in {seconds} s (each further failure doubles "
            "the wait).")
