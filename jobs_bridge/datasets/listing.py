"""One page of a version's file listing, read by keyset on ``(version_pk, path)``.

A version may hold a million files; the listing must never load them all (the old code did, and
``floyd data ls -r`` of 100k files took a minute and hundreds of MiB). Every page is one range
read on the primary key of ``version_files`` starting just after the cursor (of each of the
version's layers, ``layers.read_range``), so its cost grows with the page, not the version.

Order is byte order of the paths (SQLite's BINARY collation; PostgreSQL's column is ``COLLATE
"C"``, migration 0007), the order in which every path under ``d/`` lies in ``[d/, d0)``. In a
listing that is not recursive, a directory is summed up where its files are: it sorts as its
path followed by ``/`` (``d.txt`` before the directory ``d``, ``d0`` after it). The cursor is
the path of the last entry of the page; after a directory the next page starts past its files.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from jobs_bridge.datasets import layers
from jobs_bridge.datasets.layers import Layers, subtree_end
from jobs_bridge.errors import NotFound
from jobs_bridge.storage.manifest import Entry

# Page sizes: a request without ``limit`` gets DEFAULT_LIMIT entries (the maximum, so a client
# written before paging still gets the whole listing of any version up to that size).
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 10_000
FIRST_BATCH = 16  # rows of a folder's listing read at first (then doubled while they are files)
SUMMARY_CACHE = 50_000  # directory summaries kept in memory (a version's content never changes)


class Summaries:
    """Directory summaries by (version id, path): summing a directory reads every file below it,
    so the root of a 100k-file version costs a read of all 100k rows. A version id is the hash of
    its manifest, so a summary never goes stale; the table is bounded (least recently used out)."""

    def __init__(self, size: int = SUMMARY_CACHE) -> None:
        self.size = size
        self.items: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[int, int] | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], value: tuple[int, int]) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)


SUMMARIES = Summaries()


def entry_json(e: Entry) -> dict:
    out = {"path": e.path, "type": "file", "size": e.size, "hash": e.hash}
    return out if e.mtime is None else {**out, "mtime": e.mtime}


@dataclass(frozen=True)
class Bound:
    """Where a read starts: at ``path`` (inclusive) or just after it."""

    path: str
    inclusive: bool = False


@dataclass
class Page:
    files: list[dict]
    next: str | None


class Lister:
    """Pages of one version's files under ``prefix`` ('' or a directory path ending in '/')."""

    def __init__(self, s: Session, lay: Layers, prefix: str, version_id: str = "") -> None:
        self.s = s
        self.lay = lay
        self.prefix = prefix
        self.version_id = version_id  # the content's id: the key of cached directory summaries

    def _rows(self, start: Bound, count: int) -> list[Entry]:
        low = max(start.path, self.prefix) if start.path else self.prefix
        inclusive = start.inclusive or low != start.path
        high = subtree_end(self.prefix[:-1]) if self.prefix else None
        return layers.read_range(self.s, self.lay, low, inclusive, high, count)

    def _directory(self, path: str) -> dict:
        """A directory summed up: its size and the number of files below it."""
        cached = SUMMARIES.get((self.version_id, path)) if self.version_id else None
        if cached is None:
            cached = layers.directory_sum(self.s, self.lay, path)
            if self.version_id:
                SUMMARIES.put((self.version_id, path), cached)
        return {"path": path, "type": "directory", "size": cached[1], "file_count": cached[0]}

    def is_directory(self, path: str) -> bool:
        return bool(layers.read_range(self.s, self.lay, path + "/", True, subtree_end(path), 1))

    def start_after(self, after: str, recursive: bool) -> Bound:
        """The read's start for cursor ``after``: past a directory's files when not recursive."""
        if not after:
            return Bound("", True)
        if not recursive and self.is_directory(after):
            return Bound(subtree_end(after), True)
        return Bound(after)

    def page(self, after: str, limit: int, recursive: bool) -> Page:
        """``limit`` entries after the cursor, and the next cursor when more remain."""
        start = self.start_after(after, recursive)
        items = self._recursive(start, limit + 1) if recursive else self._top_level(start, limit + 1)
        if len(items) > limit:
            return Page(items[:limit], items[limit - 1]["path"])
        return Page(items, None)

    def _recursive(self, start: Bound, count: int) -> list[dict]:
        return [entry_json(e) for e in self._rows(start, count)]

    def _top_level(self, start: Bound, count: int) -> list[dict]:
        """Files directly under the prefix, and each subdirectory once, summed up; after a
        directory the read jumps past its files (one range read per directory)."""
        items: list[dict] = []
        batch = FIRST_BATCH
        while len(items) < count:
            # Rows past a directory's first are thrown away, so reads start small and double
            # while they find files: a root of 100 folders reads ~100 rows, not 100 × a page.
            rows = self._rows(start, min(batch, count - len(items)))
            if not rows:
                break
            batch *= 2
            for e in rows:
                rest = e.path[len(self.prefix):]
                if "/" not in rest:
                    items.append(entry_json(e))
                    start = Bound(e.path)
                    continue
                directory = self.prefix + rest.split("/", 1)[0]
                items.append(self._directory(directory))
                start = Bound(subtree_end(directory), True)
                batch = FIRST_BATCH
                break
        return items

    def exists(self) -> bool:
        """Whether anything lies under the prefix (a page past the end is empty, not a 404)."""
        return not self.prefix or bool(self._rows(Bound("", True), 1))


def list_page(s: Session, lay: Layers, ref: str, path: str, after: str, limit: int,
              recursive: bool, version_id: str = "") -> tuple[str, Page]:
    """The listed path and one page of ``path`` (clean, '' for the root) in a version.

    A path naming a file lists that file alone; one naming nothing is a 404."""
    if path:
        entry = layers.single_file(s, lay, path)
        if entry is not None:
            return entry.path, Page([entry_json(entry)], None)
    lister = Lister(s, lay, path + "/" if path else "", version_id)
    page = lister.page(after, limit, recursive)
    if not page.files and not lister.exists():
        raise NotFound(f"{ref} has no file or directory {path!r}.")
    return path, page
