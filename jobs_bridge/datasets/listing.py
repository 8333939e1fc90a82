"""One page of a version's file listing, read by keyset on ``(version_pk, path)``.

A version may hold a million files; the listing must never load them all (the old code did, and
``floyd data ls -r`` of 100k files took a minute and hundreds of MiB). Every page is one range
read on the primary key of ``version_files`` starting just after the cursor, so its cost grows
with the page, not the version.

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

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from jobs_bridge.errors import NotFound
from jobs_bridge.orm import VersionFile
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


def subtree_end(path: str) -> str:
    """The first path after every path under ``path/`` in byte order ('0' follows '/')."""
    return path + "0"


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

    def __init__(self, s: Session, version_pk: int, prefix: str, version_id: str = "") -> None:
        self.s = s
        self.version_pk = version_pk
        self.prefix = prefix
        self.version_id = version_id  # the content's id: the key of cached directory summaries

    def _in_prefix(self, q: Select, start: Bound) -> Select:
        low = max(start.path, self.prefix) if start.path else self.prefix
        inclusive = start.inclusive or low != start.path
        q = q.where(VersionFile.version_pk == self.version_pk)
        q = q.where(VersionFile.path >= low if inclusive else VersionFile.path > low)
        if self.prefix:
            q = q.where(VersionFile.path < subtree_end(self.prefix[:-1]))
        return q

    def _rows(self, start: Bound, count: int) -> list[Entry]:
        q = select(VersionFile.path, VersionFile.size, VersionFile.hash, VersionFile.mtime)
        q = self._in_prefix(q, start).order_by(VersionFile.path).limit(count)
        return [Entry(p, sz, h, mt) for p, sz, h, mt in self.s.execute(q)]

    def _directory(self, path: str) -> dict:
        """A directory summed up: its size and the number of files below it."""
        cached = SUMMARIES.get((self.version_id, path)) if self.version_id else None
        if cached is not None:
            return {"path": path, "type": "directory", "size": cached[1], "file_count": cached[0]}
        count, size = self.s.execute(
            select(func.count(), func.coalesce(func.sum(VersionFile.size), 0))
            .where(VersionFile.version_pk == self.version_pk, VersionFile.path >= path + "/",
                   VersionFile.path < subtree_end(path))
        ).one()
        if self.version_id:
            SUMMARIES.put((self.version_id, path), (int(count), int(size)))
        return {"path": path, "type": "directory", "size": int(size), "file_count": int(count)}

    def is_directory(self, path: str) -> bool:
        return self.s.scalar(
            select(VersionFile.path).where(VersionFile.version_pk == self.version_pk,
                                           VersionFile.path >= path + "/", VersionFile.path < subtree_end(path))
            .limit(1)
        ) is not None

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


def single_file(s: Session, version_pk: int, path: str) -> Entry | None:
    row = s.execute(select(VersionFile.path, VersionFile.size, VersionFile.hash, VersionFile.mtime)
                    .where(VersionFile.version_pk == version_pk, VersionFile.path == path)).first()
    return Entry(*row) if row else None


def files_under(s: Session, version_pk: int, path: str) -> list[Entry]:
    """Every file below the directory ``path`` (one range read), in path order."""
    rows = s.execute(select(VersionFile.path, VersionFile.size, VersionFile.hash, VersionFile.mtime)
                     .where(VersionFile.version_pk == version_pk, VersionFile.path >= path + "/",
                            VersionFile.path < subtree_end(path)).order_by(VersionFile.path))
    return [Entry(p, sz, h, mt) for p, sz, h, mt in rows]


def list_page(s: Session, version_pk: int, ref: str, path: str, after: str, limit: int,
              recursive: bool, version_id: str = "") -> tuple[str, Page]:
    """The listed path and one page of ``path`` (clean, '' for the root) in a version.

    A path naming a file lists that file alone; one naming nothing is a 404."""
    if path:
        entry = single_file(s, version_pk, path)
        if entry is not None:
            return entry.path, Page([entry_json(entry)], None)
    lister = Lister(s, version_pk, path + "/" if path else "", version_id)
    page = lister.page(after, limit, recursive)
    if not page.files and not lister.exists():
        raise NotFound(f"{ref} has no file or directory {path!r}.")
    return path, page
