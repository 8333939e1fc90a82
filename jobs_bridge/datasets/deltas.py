"""What a new version stores: the rows that differ from a full base version, or all its files.

A commit reads the base's rows once, in path order, beside the new manifest (a merge, no
dictionary of the base) and writes only the paths added, changed or removed. When that delta
would exceed ``max_fraction`` of the version's files the version is stored whole and becomes
the base of the versions after it, so a delta never holds more than that fraction and a read
never merges more than two layers. Deleting a base first makes its newest dependent a full
version and re-expresses the other dependents against it (``rebase``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Final, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from jobs_bridge.datasets import layers
from jobs_bridge.datasets.layers import Layers
from jobs_bridge.db import sqlite_cursor, sqlite_insert
from jobs_bridge.orm import DatasetVersion, VersionFile
from jobs_bridge.storage.manifest import Entry, Known

VERSION_FILES = cast(Table, VersionFile.__table__)  # the table itself, for Core inserts
Row = tuple[str, int, str, "float | None"]
ROW_COLUMNS = ("path", "size", "hash", "mtime", "removed")
StoredRow = tuple[str, int, str, "float | None", bool]  # a row to write: ROW_COLUMNS' values (a tuple:
# a dict per row was 0.09 s of a 100,000-file commit, made only to be taken apart again)
PATH: Final = 0  # where StoredRow keeps the path, the hash and the removed mark
HASH: Final = 2
REMOVED: Final = 4


@dataclass
class Plan:
    """The rows a version will store and the hashes it brings that its base did not hold."""

    base_pk: int | None
    rows: list[StoredRow] = field(default_factory=list)
    new_hashes: list[str] = field(default_factory=list)


def _row(e: Entry | Row, removed: bool = False) -> StoredRow:
    if isinstance(e, Entry):
        return (e.path, e.size, e.hexdigest, e.mtime, removed)
    return (e[0], e[1], e[2], e[3], removed)


def diff_rows(base: Iterable[Row], entries: list[Entry], limit: int) -> list[StoredRow] | None:
    """The delta rows turning ``base`` (path order) into ``entries`` (path order), or None as soon
    as there are more than ``limit`` of them."""
    rows: list[StoredRow] = []
    i, n = 0, len(entries)
    for path, size, hexd, mtime in base:
        while i < n and entries[i].path < path:
            rows.append(_row(entries[i]))
            i += 1
        if i < n and entries[i].path == path:
            e = entries[i]
            i += 1
            if e.size != size or e.hexdigest != hexd or e.mtime != mtime:
                rows.append(_row(e))
        else:
            rows.append(_row((path, size, hexd, mtime), removed=True))
        if len(rows) > limit:
            return None
    rows.extend(_row(e) for e in entries[i:])
    return rows if len(rows) <= limit else None


def _base_rows(s: Session, pk: int) -> Iterator[Row]:
    """The base's rows in path order, through the driver's cursor: SQLAlchemy's row objects made
    this read of 100,000 rows 2x slower, and it is the one read a commit makes of the base."""
    conn = s.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]  # an open session's connection
    try:
        cursor.execute(f"SELECT path, size, hash, mtime FROM version_files WHERE version_pk = {mark} ORDER BY path",
                       (pk,))
        while batch := cursor.fetchmany(10_000):
            yield from batch
    finally:
        cursor.close()


def full(entries: list[Entry]) -> Plan:
    return Plan(None, [(e.path, e.size, e.hexdigest, e.mtime, False) for e in entries],
                sorted({e.hexdigest for e in entries}))


def newest_base(s: Session, dataset_id: int) -> int | None:
    """The full version the dataset's next version is compared with: its newest version's base,
    or the newest itself when that one is stored whole (None for a dataset without versions)."""
    newest = s.execute(select(DatasetVersion.id, DatasetVersion.base_pk).where(DatasetVersion.dataset_id == dataset_id)
                       .order_by(DatasetVersion.number.desc()).limit(1)).first()
    return None if newest is None else (newest[1] or newest[0])


def known_files(s: Session, base_pk: int | None) -> Known | None:
    """The base's files as ``parse_manifest`` takes them: a manifest entry equal to one of them is
    not validated again, and its blob is one the dataset's writers may reference (see
    ``UploadManager.start``). One read of the base's rows, no object per row."""
    if base_pk is None:
        return None
    return {path: (size, f"sha256:{hexd}", mtime) for path, size, hexd, mtime in _base_rows(s, base_pk)}


def present(s: Session, dataset_id: int, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` (hex) a version of the dataset holds: blobs its writers may read, so an
    upload may name them without sending them (an upload that named its base by version sends
    only the directories that changed, ``changed_dirs.py``)."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    versions = select(DatasetVersion.id).where(DatasetVersion.dataset_id == dataset_id).scalar_subquery()
    for i in range(0, len(wanted), 500):
        found.update(s.scalars(select(VersionFile.hash).distinct().where(
            VersionFile.version_pk.in_(versions), VersionFile.hash.in_(wanted[i:i + 500]),
            VersionFile.removed.is_(False))))
    return found


@dataclass(frozen=True)
class Planned:
    """The delta worked out when an upload started (``rows``; None: store every file), good for
    its commit while ``base`` — the base's (pk, number): SQLite may give a deleted row's pk to
    the next one, a dataset never gives a number twice — is still the dataset's base."""

    base: tuple[int, int]
    rows: list[StoredRow] | None


def plan_from_known(s: Session, base_pk: int | None, known: Known | None, entries: list[Entry],
                    max_fraction: float) -> Planned | None:
    """The delta of ``entries`` against the base whose files ``known`` holds, found by looking each
    entry up (no read of the base's rows again at the commit: a one-file change of a 100k-file
    version then commits in what the change costs)."""
    if base_pk is None or known is None or not entries:
        return None
    base = (base_pk, version_number(s, base_pk))
    limit = int(len(entries) * max_fraction)
    rows: list[StoredRow] = []
    kept = 0
    for e in entries:
        stored = known.get(e.path)
        if stored is not None and stored[0] == e.size and stored[1][7:] == e.hexdigest and stored[2] == e.mtime:
            kept += 1
        else:
            rows.append(_row(e))
            if len(rows) > limit:
                return Planned(base, None)
    if kept < len(known):
        present = {e.path for e in entries}
        rows.extend(_row((p, size, h[7:], mtime), removed=True) for p, (size, h, mtime) in known.items() if p not in present)
    rows.sort(key=itemgetter(PATH))
    return Planned(base, rows if len(rows) <= limit else None)


def version_number(s: Session, pk: int) -> int:
    return int(s.scalar(select(DatasetVersion.number).where(DatasetVersion.id == pk)) or 0)


def plan(s: Session, dataset_id: int, entries: list[Entry], max_fraction: float, planned: Planned | None = None) -> Plan:
    """The rows of the dataset's next version: a delta against the base of its newest version
    when the delta stays within ``max_fraction`` of the files, else every file (``planned``:
    the upload's own delta, taken when its base is still the base)."""
    base_pk = newest_base(s, dataset_id)
    if base_pk is None or not entries:
        return full(entries)
    if planned is not None and planned.base == (base_pk, version_number(s, base_pk)):
        rows = planned.rows
    else:
        rows = diff_rows(_base_rows(s, base_pk), entries, int(len(entries) * max_fraction))
    if rows is None:
        return full(entries)
    return Plan(base_pk, rows, sorted({r[HASH] for r in rows if not r[REMOVED]}))


def write(s: Session, version_pk: int, rows: list[StoredRow]) -> None:
    """Insert a version's rows: on SQLite through the driver (``db.sqlite_insert``: 100,000 rows in
    0.5 s against 0.9 s through Core), elsewhere through Core, whose batched ``VALUES`` lists
    are PostgreSQL's fast path (the ORM's bulk path was 2x slower than Core)."""
    cursor = sqlite_cursor(s)
    if cursor is not None:
        # in hash order: the inserts into the hash index then walk it once, not at random (0.45–0.55
        # s for 100,000 rows into a table of 100,000–500,000, against 0.45–0.8 s in path order)
        try:
            sqlite_insert(cursor, "version_files", {"version_pk": version_pk}, ROW_COLUMNS,
                          sorted(rows, key=itemgetter(HASH)))
        finally:
            cursor.close()
        return
    for i in range(0, len(rows), 50_000):
        s.execute(insert(VERSION_FILES), [{"version_pk": version_pk, **dict(zip(ROW_COLUMNS, r, strict=True))}
                                          for r in rows[i:i + 50_000]])


def rebase(s: Session, base: DatasetVersion, max_fraction: float) -> None:
    """Before ``base`` (a full version) is deleted: its newest dependent stores all its files and
    the other dependents become deltas against that one, each still reading as before."""
    dependents = list(s.scalars(select(DatasetVersion).where(DatasetVersion.base_pk == base.id)
                                .order_by(DatasetVersion.number)))
    if not dependents:
        return
    heir = dependents.pop()
    heir_entries = layers.entries(s, Layers(heir.id, base.id))
    others = [(d, layers.entries(s, Layers(d.id, base.id))) for d in dependents]
    s.execute(delete(VersionFile).where(VersionFile.version_pk == heir.id))
    write(s, heir.id, full(heir_entries).rows)
    heir.base_pk = None
    heir_rows = [(e.path, e.size, e.hexdigest, e.mtime) for e in heir_entries]
    for d, entries in others:
        rows = diff_rows(heir_rows, entries, int(len(entries) * max_fraction))
        s.execute(delete(VersionFile).where(VersionFile.version_pk == d.id))
        write(s, d.id, rows if rows is not None else full(entries).rows)
        d.base_pk = heir.id if rows is not None else None
    s.flush()
