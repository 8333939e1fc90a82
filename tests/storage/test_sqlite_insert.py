"""``db.sqlite_insert``: the rows SQLite takes apart from JSON are the rows ``executemany`` would
have written, value for value (doubles to the last bit, big integers, NULLs, booleans, any text)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs_bridge import db

COLUMNS = ("path", "size", "hash", "mtime", "removed")


def _rows() -> list[tuple]:
    rng = random.Random(7)
    rows = [(f"d{i:03d}/f{i}.txt", rng.randrange(0, 1 << 62), f"{i:064x}", rng.randrange(0, 2 * 10**18) / 1e9, False)
            for i in range(3000)]
    rows += [('quote"back\\slash', 0, "a" * 64, None, True), ("tab\tnew\nline é ✓ \u2028", 1, "b" * 64, 0.1, False),
             ("tiny", 2, "c" * 64, 5e-324, False), ("huge", 3, "d" * 64, 1.7976931348623157e308, True)]
    return rows


@pytest.fixture(params=[True, False], ids=["json", "executemany"])
def cursor(request: pytest.FixtureRequest) -> Iterator[sqlite3.Cursor]:
    saved = db._json1
    db._json1 = None if request.param else False  # None: asked of this SQLite, as in the bridge
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (version_pk INTEGER, path TEXT, size BIGINT, hash TEXT, mtime FLOAT, removed BOOLEAN,"
                 " PRIMARY KEY (version_pk, path))")
    yield conn.cursor()
    conn.close()
    db._json1 = saved


def test_rows_read_back_as_written(cursor: sqlite3.Cursor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "JSON_CHUNK", 1000)  # several statements
    rows = _rows()
    db.sqlite_insert(cursor, "t", {"version_pk": 9}, COLUMNS, rows)
    back = cursor.execute("SELECT version_pk, path, size, hash, mtime, removed FROM t ORDER BY rowid").fetchall()
    assert back == [(9, *r[:4], int(r[4])) for r in rows]
    assert all(type(b[4]) is type(r[3]) for b, r in zip(back, rows, strict=True))  # a double stays a double


def test_or_ignore_keeps_what_is_there(cursor: sqlite3.Cursor) -> None:
    db.sqlite_insert(cursor, "t", {"version_pk": 1}, ("path", "size"), [("a", 1)])
    db.sqlite_insert(cursor, "t", {"version_pk": 1}, ("path", "size"), [("a", 2), ("b", 3)], or_ignore=True)
    assert cursor.execute("SELECT path, size FROM t ORDER BY path").fetchall() == [("a", 1), ("b", 3)]
    with pytest.raises(sqlite3.IntegrityError):
        db.sqlite_insert(cursor, "t", {"version_pk": 1}, ("path", "size"), [("b", 4)])


def test_pooled_connections_keep_small_page_caches(tmp_path: Path) -> None:
    """Every connection the bridge's engine opens holds at most SQLITE_CACHE_KIB of pages: at
    SQLite's 2 MiB default the pool kept 20–34 MiB after two 100,000-file uploads."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -db.SQLITE_CACHE_KIB
    finally:
        engine.dispose()
