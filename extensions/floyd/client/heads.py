"""The version a tree was last uploaded as, so an unchanged tree costs a scan and one request.

Per (platform, dataset, directory) the client keeps the fingerprint of the last upload's scan
(``TreeScan.fingerprint``: every path with its device, inode, mtime_ns and size) and the
version id the server gave it.
When the next scan has the same fingerprint the manifest is the same — the stat cache's own
assumption — so no file is looked up or hashed: the client only asks the server whether this
dataset still has a version with that id (``POST …/uploads`` with ``{"version_id"}``).

For a version the upload made, it also keeps each directory's digest (``TreeScan.digests``), so
the next upload of a changed tree sends only the directories whose digest changed, each whole,
and names that version as its base (``Changes``; the bridge's ``datasets/changed_dirs.py``).
"""

from __future__ import annotations

import marshal
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from floyd.client.errors import FloydAPIError
from floyd.client.statcache import StatCache

if TYPE_CHECKING:
    from floyd.client.http import FloydClient
    from floyd.client.treescan import TreeScan


class Changes(TypedDict):
    """What changed since the version ``number`` (``version_id``) was uploaded from this tree: the
    directories ("" or "a/b/") whose files changed, appeared or went. A dict, as it is sent."""

    number: int
    version_id: str
    directories: set[str]


class TreeHeads:
    """``tree_heads`` rows in the stat cache's database: tree key → (fingerprint, version id);
    ``tree_dirs`` rows: tree key → the version the upload made and its directories' digests."""

    def __init__(self, cache: StatCache, url: str, owner: str, name: str, root: Path) -> None:
        self.cache = cache
        self.owner, self.name = owner, name
        self._early: tuple[str, _Asked] | None = None  # (version id, its question under way)
        self.key = "\0".join((url, owner, name, os.path.abspath(root)))
        with cache.lock:
            cache.db.execute("CREATE TABLE IF NOT EXISTS tree_heads (tree TEXT PRIMARY KEY, fingerprint TEXT,"
                             " version_id TEXT)")
            cache.db.execute("CREATE TABLE IF NOT EXISTS tree_dirs (tree TEXT PRIMARY KEY, number INTEGER,"
                             " version_id TEXT, digests BLOB)")

    def _row(self) -> tuple[str, str] | None:
        with self.cache.lock:
            row = self.cache.db.execute("SELECT fingerprint, version_id FROM tree_heads WHERE tree = ?",
                                        (self.key,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def known(self, tree: TreeScan) -> str | None:
        """The version id of the last upload of this tree, if the tree is unchanged since."""
        row = self._row()
        return row[1] if row is not None and row[0] == tree.fingerprint else None

    def ask_early(self, client: FloydClient) -> None:
        """Ask now, in a thread, whether the dataset still has the version this tree was last
        uploaded as, so the answer is in when the scan ends (the CLI calls this before finishing
        its scan; the scan then decides whether the answer counts, and a changed tree wasted one
        read-only request)."""
        row = self._row()
        if row is not None:
            self._early = (row[1], _Asked(lambda: head_version(client, self.owner, self.name, row[1])))

    def unchanged(self, client: FloydClient, tree: TreeScan) -> dict | None:
        """The dataset's version this tree was last uploaded as, if the tree is unchanged since and
        the dataset still has that version: one request, no file read or hashed."""
        known = self.known(tree)
        if known is None:
            return None
        if self._early is not None and self._early[0] == known:
            return self._early[1].result()
        return head_version(client, self.owner, self.name, known)

    def changes(self, tree: TreeScan) -> Changes | None:
        """The directories changed since the last version an upload of this tree made, or None
        when no upload of it made one (or a duplicate came after it: a version found again may
        keep another checkout's file times)."""
        with self.cache.lock:
            row = self.cache.db.execute("SELECT number, version_id, digests FROM tree_dirs WHERE tree = ?",
                                        (self.key,)).fetchone()
        if row is None:
            return None
        try:
            old: dict[str, str] = dict(marshal.loads(row[2]))
        except (EOFError, ValueError, TypeError):  # a damaged row: send the whole manifest
            return None
        new = tree.digests
        changed = {d for d, h in new.items() if old.get(d) != h}
        changed.update(d for d in old if d not in new)
        return Changes(number=int(row[0]), version_id=str(row[1]), directories=changed)

    def remember(self, tree: TreeScan, version: dict, made: bool) -> None:
        """``version`` is what the tree now is; ``made``: the upload made it from this tree's files
        (not a duplicate of one made before), so its directories can be a base (``changes``)."""
        with self.cache.lock:
            self.cache.db.execute("INSERT OR REPLACE INTO tree_heads VALUES (?, ?, ?)",
                                  (self.key, tree.fingerprint, version["id"]))
            if made and isinstance(version.get("number"), int):
                self.cache.db.execute("INSERT OR REPLACE INTO tree_dirs VALUES (?, ?, ?, ?)",
                                      (self.key, version["number"], version["id"], marshal.dumps(tree.digests)))
            else:
                self.cache.db.execute("DELETE FROM tree_dirs WHERE tree = ?", (self.key,))
            self.cache.db.commit()


def head_version(client: FloydClient, owner: str, name: str, version_id: str) -> dict | None:
    """The dataset's version with this id, or None (deleted since, or a bridge without the request)."""
    try:
        answer = client.check_head(owner, name, version_id)
    except FloydAPIError as exc:
        if exc.status in (400, 404):
            return None
        raise
    same = answer.get("duplicate_of") if isinstance(answer, dict) else None
    return same if isinstance(same, dict) and same.get("id") == version_id else None


class _Asked(threading.Thread):
    """A question asked in a thread of its own; ``result`` waits for it and raises what it raised."""

    def __init__(self, ask: Callable[[], dict | None]) -> None:
        super().__init__(name="floyd-head", daemon=True)
        self._ask = ask
        self._value: dict | None = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._ask()
        except BaseException as exc:  # given to the caller by result()
            self._error = exc

    def result(self) -> dict | None:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value
