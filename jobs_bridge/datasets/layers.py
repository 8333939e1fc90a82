"""A version's files read through its two layers: its own rows over its base's.

A full version (``base_pk`` NULL) holds a row per file. A delta version holds rows only for the
paths added, changed or removed (``removed``) relative to its base, always a full version, so a
read merges at most two layers: chains never grow (see docs/architecture.md, "Datasets").
Every reader of ``version_files`` goes through here; each read is a range read on the primary
key ``(version_pk, path)`` of each layer, so its cost still grows with what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs_bridge.orm import DatasetVersion, VersionFile
from jobs_bridge.storage.manifest import Entry

COLUMNS = (VersionFile.path, VersionFile.size, VersionFile.hash, VersionFile.mtime)
CHUNK = 500  # paths per IN (...) lookup


@dataclass(frozen=True)
class Layers:
    """Where a version's files are: its own rows and, for a delta version, its base's."""

    own: int
    base: int | None = None

    @property
    def full(self) -> bool:
        return self.base is None


def of(v: DatasetVersion) -> Layers:
    return Layers(v.id, v.base_pk)


def by_pk(s: Session, pk: int) -> Layers:
    return Layers(pk, s.scalar(select(DatasetVersion.base_pk).where(DatasetVersion.id == pk)))


def subtree_end(path: str) -> str:
    """The first path after every path under ``path/`` in byte order ('0' follows '/')."""
    return path + "0"


def _range(s: Session, pk: int, low: str, inclusive: bool, high: str | None, count: int | None,
           last: str | None = None) -> list[tuple]:
    """Rows of one layer (removed ones included) from ``low`` to ``high`` (excluded) or ``last``."""
    q = select(*COLUMNS, VersionFile.removed).where(VersionFile.version_pk == pk)
    q = q.where(VersionFile.path >= low if inclusive else VersionFile.path > low)
    if high is not None:
        q = q.where(VersionFile.path < high)
    if last is not None:
        q = q.where(VersionFile.path <= last)
    q = q.order_by(VersionFile.path)
    if count is not None:
        q = q.limit(count)
    return [tuple(r) for r in s.execute(q)]


def own_rows(s: Session, pk: int) -> list[tuple]:
    """Every row of one layer, removed ones included: (path, size, hash, mtime, removed)."""
    return _range(s, pk, "", True, None, None)


def _entry(row: tuple) -> Entry:
    return Entry(row[0], row[1], row[2], row[3])


def read_range(s: Session, lay: Layers, low: str = "", inclusive: bool = True, high: str | None = None,
               count: int | None = None) -> list[Entry]:
    """The version's files with ``low`` ≤ (or <) path < ``high``, in path order, at most ``count``.

    The base is read ``count`` rows at a time; only the delta rows up to the last base row read
    are merged in, so a page reads about a page of each layer."""
    if lay.base is None:
        return [_entry(r) for r in _range(s, lay.own, low, inclusive, high, count)]
    out: list[Entry] = []
    while count is None or len(out) < count:
        need = None if count is None else count - len(out)
        base = _range(s, lay.base, low, inclusive, high, need)
        more = need is not None and len(base) == need
        cut = base[-1][0] if more else None
        merged = {r[0]: r for r in base}
        for r in _range(s, lay.own, low, inclusive, high, None, last=cut):
            if r[4]:
                merged.pop(r[0], None)
            else:
                merged[r[0]] = r
        out.extend(_entry(merged[p]) for p in sorted(merged))
        if not more:
            break
        low, inclusive = cut or low, False
    return out if count is None else out[:count]


def entries(s: Session, lay: Layers) -> list[Entry]:
    """Every file of the version, in path order."""
    return read_range(s, lay)


def file_map(s: Session, lay: Layers) -> dict[str, str]:
    """``{path: hex digest}`` of every file of the version."""
    return {e.path: e.hexdigest for e in read_range(s, lay)}


def lookup(s: Session, pk: int, paths: Iterable[str]) -> dict[str, tuple]:
    """The rows of one layer for ``paths`` (removed rows included), by path."""
    wanted = sorted(set(paths))
    found: dict[str, tuple] = {}
    for i in range(0, len(wanted), CHUNK):
        q = select(*COLUMNS, VersionFile.removed).where(VersionFile.version_pk == pk,
                                                        VersionFile.path.in_(wanted[i:i + CHUNK]))
        found.update((r[0], tuple(r)) for r in s.execute(q))
    return found


def states(s: Session, lay: Layers, paths: Iterable[str]) -> dict[str, Entry]:
    """The files the version has at ``paths`` (a path it lacks is left out)."""
    wanted = set(paths)
    own = lookup(s, lay.own, wanted)
    out = {p: _entry(r) for p, r in own.items() if not r[4]}
    if lay.base is not None:
        rest = wanted - own.keys()
        out.update((p, _entry(r)) for p, r in lookup(s, lay.base, rest).items())
    return out


def single_file(s: Session, lay: Layers, path: str) -> Entry | None:
    return states(s, lay, [path]).get(path)


def files_under(s: Session, lay: Layers, path: str) -> list[Entry]:
    """Every file below the directory ``path``, in path order."""
    return read_range(s, lay, path + "/", True, subtree_end(path))


def directory_sum(s: Session, lay: Layers, path: str) -> tuple[int, int]:
    """Files below the directory ``path`` and their bytes: the base's sum, amended by the delta."""
    pk = lay.own if lay.base is None else lay.base
    count, size = s.execute(
        select(func.count(), func.coalesce(func.sum(VersionFile.size), 0))
        .where(VersionFile.version_pk == pk, VersionFile.path >= path + "/", VersionFile.path < subtree_end(path))
    ).one()
    count, size = int(count), int(size)
    if lay.base is None:
        return count, size
    delta = _range(s, lay.own, path + "/", True, subtree_end(path), None)
    before = lookup(s, lay.base, [r[0] for r in delta])
    for r in delta:
        old = before.get(r[0])
        if old is not None:
            count, size = count - 1, size - old[1]
        if not r[4]:
            count, size = count + 1, size + r[1]
    return count, size


def hashes(s: Session, pk: int) -> set[str]:
    """Every hash the rows of one layer name (a delta's removed rows name its base's)."""
    return set(s.scalars(select(VersionFile.hash).where(VersionFile.version_pk == pk)))
