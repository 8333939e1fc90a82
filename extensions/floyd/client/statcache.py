"""The stat cache: a file's (device, inode, mtime_ns, size) → its sha256, kept between runs.

A file whose key is unchanged since the last run is not read again (``hashing.py``), and the tree
heads (``heads.py``) live in the same SQLite file. Its own module, so that an unchanged tree's
re-upload, which only opens the cache, does not import the hashing machinery.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from floyd.client.config import cache_dir
from floyd.client.dirscan import Key

if TYPE_CHECKING:
    from floyd.client.treescan import LocalFile

LOOKUP_BATCH = 500  # stat-cache keys per query (under SQLite's 999 host parameters with 1 per key)


class StatCache:
    """(dev, inode, mtime_ns, size) → sha256, in a small SQLite file under ~/.cache/floyd."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "stat-cache.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS stat_cache (dev INTEGER, ino INTEGER, mtime_ns INTEGER, size INTEGER,"
            " hash TEXT, PRIMARY KEY (dev, ino, mtime_ns, size))"
        )
        self.lock = threading.Lock()
        self._storing: threading.Thread | None = None

    def lookup(self, files: Iterable[LocalFile]) -> dict[Key, str]:
        """Hashes of the files whose key is known: by inode in batches, the rest compared here
        (one query per file cost ~17 µs each, a third of a 100k-file re-upload)."""
        self.settle()
        wanted = {f.key for f in files}
        by_dev: dict[int, set[int]] = {}
        for k in wanted:
            by_dev.setdefault(k[0], set()).add(k[1])
        found: dict[Key, str] = {}
        with self.lock:
            for dev, inode_set in by_dev.items():
                inodes = sorted(inode_set)
                for i in range(0, len(inodes), LOOKUP_BATCH):
                    chunk = inodes[i : i + LOOKUP_BATCH]
                    rows = self.db.execute(  # (dev, ino) leads the primary key: an index range, not a scan
                        "SELECT dev, ino, mtime_ns, size, hash FROM stat_cache WHERE dev = ? AND ino IN "
                        f"({','.join('?' * len(chunk))})", (dev, *chunk),
                    )
                    for k0, k1, k2, k3, digest in rows:
                        k = (k0, k1, k2, k3)
                        if k in wanted:
                            found[k] = digest
        return found

    def store(self, items: Iterable[tuple[Key, str]]) -> None:
        with self.lock:
            self.db.executemany("INSERT OR REPLACE INTO stat_cache VALUES (?, ?, ?, ?, ?)",
                                [(*k, h) for k, h in items])
            self.db.commit()

    def store_soon(self, files: list[LocalFile], digests: dict[str, str]) -> None:
        """Store the hashes of ``files`` in a thread of its own: the upload's manifest request,
        mostly a wait for the server, runs meanwhile (0.16 s of a 100,000-file upload).
        ``close`` (and the interpreter's exit: the thread is not a daemon) waits for it."""
        self.settle()
        self._storing = threading.Thread(target=lambda: self.store((f.key, digests[f.path]) for f in files),
                                         name="floyd-stat-cache")
        self._storing.start()

    def settle(self) -> None:
        """Wait for a ``store_soon`` still running."""
        if self._storing is not None:
            self._storing.join()
            self._storing = None

    def close(self) -> None:
        self.settle()
        self.db.close()
