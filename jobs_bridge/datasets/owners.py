"""Who has proven they hold a blob (``blob_owners``): read and written by the 100,000 in an upload.

Deduplication is per user (see ``BlobOwner``), so an upload asks which of its hashes the
uploader owns when it starts and when it commits, and records each blob it receives. Built
per chunk, SQLAlchemy's expanding ``IN`` cost ~4 µs a hash and its bulk insert with a read
before it ~10 µs; on SQLite the driver's own statements do both for a fraction
(``INSERT OR IGNORE``: a row another request added meanwhile is no error). Elsewhere
(PostgreSQL) Core's statements, whose batched ``VALUES`` are that driver's fast path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.db import sqlite_cursor
from jobs_bridge.orm import BlobOwner

CHUNK = 500  # hashes per IN (SQLite's bound-parameter limit is 32,766; a shorter list plans faster)
OWNED = select(BlobOwner.hash).where(
    BlobOwner.owner == bindparam("owner"), BlobOwner.hash.in_(bindparam("hashes", expanding=True))
)
SQLITE_ADD = "INSERT OR IGNORE INTO blob_owners (hash, owner) VALUES (?, ?)"
log = logging.getLogger("jobs_bridge.owners")
ATTEMPTS = 3  # writes of one batch of ownership rows before its blobs are given up (asked for again)


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
        cursor.executemany(SQLITE_ADD, [(h, owner) for h in unique])
    finally:
        cursor.close()


class ReceivedRecorder:
    """Records blobs as received by their uploader in a thread of its own, so a pack request
    answers once its blobs are stored and the next pack streams in while the rows are written
    (SQLite writes them with the GIL released: ~10 µs a blob, a third of a pack's time).
    Each upload request that reads ownership (a start's ``missing``, a commit's check) calls
    ``wait`` first, before it opens a session: on SQLite a session that has written holds the one
    write lock, which the recorder would wait for in turn.
    A failed write is logged and leaves its blobs unrecorded: the client is asked for them again."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="floyd-owners")

    def record(self, owner: str, hashes: list[str]) -> None:
        if hashes:
            self._writer.submit(self._write, owner, hashes)

    def wait(self) -> None:
        """Return once every row recorded so far is committed (the writer runs them in order)."""
        self._writer.submit(lambda: None).result()

    def _write(self, owner: str, hashes: list[str]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.sessions.begin() as s:
                    add(s, owner, hashes)
                return
            except Exception as exc:  # OperationalError: SQLite's write lock held past its busy timeout
                if attempt < ATTEMPTS and isinstance(exc, OperationalError):
                    log.warning("Recording %d received blob(s) of %s: %s; trying again", len(hashes), owner, exc)
                    continue
                log.error("Could not record %d received blob(s) of %s; they will be asked for again",
                          len(hashes), owner, exc_info=exc)
                return
