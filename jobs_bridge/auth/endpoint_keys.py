"""API keys of endpoints: shown once, stored as SHA-256, checked from memory.

A key is ``fk_<32 random url-safe characters>``: 190 bits, so a plain SHA-256 (not a slow
password hash) is the right digest, and checking a key costs a hash and a dict lookup — no
database round trip on the request path. The cache is refreshed on every change.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.errors import BadRequest, NotFound
from jobs_bridge.names import check_name
from jobs_bridge.orm import EndpointKey
from jobs_bridge.timeutil import aware, utcnow
from jobs_bridge.validate import id_number

KEY_PREFIX = "fk_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyGrant:
    key_id: int
    endpoint_id: int
    expires_at: datetime | None


def key_json(key: EndpointKey) -> dict:
    expires, revoked = aware(key.expires_at), aware(key.revoked_at)
    now = utcnow()
    state = "revoked" if revoked else "expired" if expires and expires <= now else "active"
    return {"id": key.id, "name": key.name, "prefix": key.prefix, "state": state,
            "created_by": key.created_by, "created_at": aware(key.created_at).isoformat(),
            "expires_at": expires.isoformat() if expires else None,
            "revoked_at": revoked.isoformat() if revoked else None,
            "last_used_at": aware(key.last_used_at).isoformat() if key.last_used_at else None}


class KeyStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._grants: dict[str, KeyGrant] = {}
        self._seen: dict[str, KeyGrant] = {}  # keys checked since the last change: no hashing again
        self._used: set[int] = set()  # key ids used since the last flush of last_used_at
        self._lock = threading.Lock()
        # Called (from whichever thread reloaded) after every change: the data plane's key map.
        self.listeners: list[Callable[[], None]] = []
        self.generation = 0  # counts reloads
        self.reload()

    def reload(self) -> None:
        with self.sessions() as s:
            rows = s.scalars(select(EndpointKey).where(EndpointKey.revoked_at.is_(None)))
            grants = {k.secret_hash: KeyGrant(k.id, k.endpoint_id, aware(k.expires_at)) for k in rows}
        self._grants = grants
        self._seen = {}
        self.generation += 1
        for listener in self.listeners:
            listener()

    def grants(self) -> list[tuple[str, KeyGrant]]:
        """``(sha256 hex, grant)`` of every key not revoked (expired ones included)."""
        return list(self._grants.items())

    def mark_used(self, secret_hash: str) -> None:
        """A request was answered with this key elsewhere (the data plane): note it for last_used_at."""
        grant = self._grants.get(secret_hash)
        if grant is not None:
            self._used.add(grant.key_id)

    def create(self, s: Session, endpoint_id: int, name: object, created_by: str,
               expires_in_days: object) -> tuple[EndpointKey, str]:
        name = check_name("default" if name is None else name, "key name")
        expires_at = None
        if expires_in_days is not None and (isinstance(expires_in_days, bool) or expires_in_days != 0):
            if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, (int, float)) \
                    or not 0 < expires_in_days <= 3650:
                raise BadRequest("'expires_in_days' must be a number of days between 0 and 3650 (or omitted).")
            expires_at = utcnow() + timedelta(days=float(expires_in_days))
        secret = KEY_PREFIX + secrets.token_urlsafe(24)
        key = EndpointKey(endpoint_id=endpoint_id, name=name, prefix=secret[:8], secret_hash=digest(secret),
                          created_by=created_by, expires_at=expires_at)
        s.add(key)
        s.flush()
        return key, secret

    def revoke(self, s: Session, endpoint_id: int, key_id: object) -> EndpointKey:
        kid = id_number(key_id, "key id", "use the number `floyd endpoint keys list` shows.")
        key = s.get(EndpointKey, kid)
        if key is None or key.endpoint_id != endpoint_id:
            raise NotFound(f"Key {kid} not found for this endpoint.")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
        return key

    def check(self, secret: str, endpoint_id: int) -> bool:
        """True when ``secret`` is a live key of the endpoint (constant work: one hash, one lookup)."""
        grant = self._seen.get(secret)
        if grant is None:
            grant = self._grants.get(digest(secret))
            if grant is None:
                return False
            if len(self._seen) > 10_000:
                self._seen = {}
            self._seen[secret] = grant
        if grant.endpoint_id != endpoint_id:
            return False
        if grant.expires_at is not None and grant.expires_at <= utcnow():
            return False
        self._used.add(grant.key_id)
        return True

    def flush_usage(self) -> None:
        """Write last_used_at in one batch (the request path never writes to the database)."""
        used, self._used = self._used, set()
        if not used:
            return
        now = utcnow()
        with self.sessions.begin() as s:
            for key in s.scalars(select(EndpointKey).where(EndpointKey.id.in_(used))):
                key.last_used_at = now
