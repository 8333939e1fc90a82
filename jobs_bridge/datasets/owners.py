"""Who has proven they hold a blob (``blob_owners``): read and written by the 100,000 in an upload.

Deduplication is per user (see ``BlobOwner``), so an upload asks which of its hashes the
uploader owns when it starts and when it commits, and records each blob it receives. Built
per chunk, SQLAlchemy's expanding ``IN`` cost ~4 µs a hash and its bulk insert with a read
before it ~10 µs; on SQLite the driver's own ``IN`` lists and ``db.sqlite_insert`` do both for a
fraction (``INSERT OR IGNORE``: a row another request added meanwhile is no error). Elsewhere
(PostgreSQL) Core's statements, whose batched ``VALUES`` are that driver's fast path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.db import sqlite_cursor, sqlite_insert
from jobs_bridge.orm import BlobOwner

CHUNK = 500  # hashes per IN (SQLite's bound-parameter limit is 32,766; a shorter list plans faster)
OWNED = select(BlobOwner.hash).where(
    BlobOwner.owner == bindparam("owner"), BlobOwner.hash.in_(bindparam("hashes", expanding=True))
)
log = logging.getLogger("jobs_bridge.owners")
ATTEMPTS = 3  # writes of a transaction of ownership rows before its blobs are given up (asked for again)


def owned(s: Session, owner: str, hashes: list[str]) -> set[str]:
    """Which of ``hashes`` (hex) ``owner`` has proven to hold."""
    found: set[str] = set()
    cursor = sqlite_cursor(s)
    if cursor is None:
        for i in range(0, len(hashes), CHUNK):
            found.update(s.scalars(OWNED, {"owner": owner, "hashes": hashes[i:i + CHUNK]}))
        return found
    try:
        full = f"SELECT hash FROM blob_owners WHERE owner = ? AND hash IN ({','.join('?' * CHUNK)})"
        for i in range(0, len(hashes), CHUNK):
            chunk = hashes[i:i + CHUNK]
            sql = full if len(chunk) == CHUNK else f"SELECT hash FROM blob_owners WHERE owner = ? AND hash IN ({','.join('?' * len(chunk))})"
            found.update(row[0] for row in cursor.execute(sql, (owner, *chunk)))
    finally:
        cursor.close()
    return found


def add(s: Session, owner: str, hashes: Iterable[str]) -> None:
    """Record that ``owner`` holds each of ``hashes`` (those already recorded stay as they are)."""
    unique = sorted(set(hashes))
    if not unique:
        return
    cursor = sqlite_cursor(s)
    if cursor is None:
        have = owned(s, owner, unique)
        new = [{"hash": h, "owner": owner} for h in unique if h not in have]
        if new:
            s.execute(insert(BlobOwner), new)
        return
    try:
        sqlite_insert(cursor, "blob_owners", {"owner": owner}, ("hash",), [(h,) for h in unique], or_ignore=True)
    finally:
        cursor.close()


class ReceivedRecorder:
    """Records blobs as received by their uploader in a thread of its own, so a pack request
    answers once its blobs are stored and the next pack streams in while the rows are written.
    Each upload request that reads ownership (a start's ``missing``, a commit's check) calls
    ``wait`` first, before it opens a session: on SQLite a session that has written holds the one
    write lock, which the recorder would wait for in turn.

    Whatever was recorded while a write ran goes into the next write, one transaction: a
    transaction per pack (4,096 hashes) cost as much in its commit as in its rows (each dirties a
    page of the owners' index per row, a 16 MiB WAL to write back), so the recorder fell 0.4–0.8 s
    behind the packs of a 100,000-file upload, and the commit waited for it.
    A failed write is logged and leaves its blobs unrecorded: the client is asked for them again."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="floyd-owners")
        self._guard = threading.Lock()
        self._pending: dict[str, list[str]] = {}  # owner → hashes no write has taken yet
        self._scheduled = False  # a write is queued that will take ``_pending``

    def record(self, owner: str, hashes: list[str]) -> None:
        if not hashes:
            return
        with self._guard:
            self._pending.setdefault(owner, []).extend(hashes)
            if self._scheduled:
                return
            self._scheduled = True
        self._writer.submit(self._write)

    def wait(self) -> None:
        """Return once every row recorded so far is committed (the writer runs in order, and a
        write queued before this call takes whatever was recorded before it)."""
        self._writer.submit(lambda: None).result()

    def _write(self) -> None:
        with self._guard:
            pending, self._pending, self._scheduled = self._pending, {}, False
        count = sum(map(len, pending.values()))
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.sessions.begin() as s:
                    for owner, hashes in pending.items():
                        add(s, owner, hashes)
                return
            except Exception as exc:  # OperationalError: SQLite's write lock held past its busy timeout
                if attempt < ATTEMPTS and isinstance(exc, OperationalError):
                    log.warning("Recording %d received blob(s) of %s: %s; trying again", count, ", ".join(pending), exc)
                    continue
                log.error("Could not record %d received blob(s) of %s; they will be asked for again",
                          count, ", ".join(pending), exc_info=exc)
                return
