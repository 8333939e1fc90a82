"""Engine and sessions, and the start-up schema check (JupyterHub's ``upgrade-db`` pattern)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

ALEMBIC_DIR = Path(__file__).parent / "alembic"


class SchemaOutOfDate(RuntimeError):
    """The database was made by another version of the bridge."""


# Each pooled SQLite connection keeps a page cache of its own (2 MiB by default), filled by any
# large read (a 100,000-file version's rows) and kept: with the pool's connections that was 20–34
# MiB of the bridge's memory after two big uploads, and little gained, since a write by another
# connection (WAL) makes the others drop their caches anyway and the pages stay in the OS's cache.
SQLITE_CACHE_KIB = 512


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, url: str) -> None:
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def init_schema(engine: Engine, url: str, auto_upgrade: bool = False) -> str:
    """Create the schema on an empty database; refuse to run on an out-of-date one."""
    head = head_revision(url)
    current = current_revision(engine)
    if current == head:
        return "current"
    tables = set(inspect(engine).get_table_names())
    if current is None and not (tables - {"alembic_version"}):
        upgrade(engine, url)
        return "created"
    if auto_upgrade:
        upgrade(engine, url)
        return "upgraded"
    raise SchemaOutOfDate(
        f"The database {engine.url.render_as_string(hide_password=True)} is at schema revision "
        f"{current or 'unknown'}, this bridge needs {head}. Back it up, then run "
        "`floyd-bridge --upgrade-db` (or set c.BridgeApp.upgrade_db = True)."
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def sqlite_cursor(s: Session) -> Any | None:
    """A DB-API cursor on the session's own connection (inside its transaction) when that is
    SQLite, else None: the driver's ``executemany`` and plain ``IN`` lists are several times
    faster than Core's for the 100,000 rows of an upload; PostgreSQL keeps Core's batched VALUES."""
    conn = s.connection()
    if conn.dialect.name != "sqlite":
        return None
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]  # an open session's connection


JSON_CHUNK = 2_000  # rows per statement of ``sqlite_insert``: the statement cache keeps its last text (20,000: 1.6 MiB a connection)
_json1: bool | None = None  # whether this SQLite has json_each/json_extract (built in from 3.38): asked once


def sqlite_insert(cursor: Any, table: str, fixed: dict[str, Any], columns: Sequence[str],
                  rows: Sequence[Sequence[Any]], or_ignore: bool = False) -> None:
    """Insert ``rows`` (values of ``columns``; every row also gets ``fixed``) on SQLite with one
    statement per ``JSON_CHUNK`` rows, which SQLite takes apart itself (``json_each``).

    Why not ``executemany``: the driver releases the GIL around each row's step and takes it
    back after, and a thread taking it back waits for whichever thread holds it to yield (the
    interpreter's 5 ms switch interval when that thread is busy). In the bridge, the owner
    recorder's 100,000 rows took 1.4 s beside the pack requests against 0.2 s alone (65 s beside
    a thread that only computes); one statement waits once. Doubles survive the JSON text exactly
    (``repr`` is the shortest text that reads back as the same double)."""
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    names = ", ".join([*fixed, *columns])
    if not _has_json1(cursor):
        marks = ", ".join("?" * (len(fixed) + len(columns)))
        cursor.executemany(f"{verb} INTO {table} ({names}) VALUES ({marks})", [(*fixed.values(), *r) for r in rows])
        return
    picks = ["?"] * len(fixed) + [f"json_extract(value, '$[{i}]')" for i in range(len(columns))]
    sql = f"{verb} INTO {table} ({names}) SELECT {', '.join(picks)} FROM json_each(?)"
    for i in range(0, len(rows), JSON_CHUNK):
        cursor.execute(sql, (*fixed.values(), json.dumps(rows[i:i + JSON_CHUNK])))


def _has_json1(cursor: Any) -> bool:
    global _json1
    if _json1 is None:
        try:
            _json1 = cursor.execute("SELECT json_extract('[1.5]', '$[0]')").fetchone()[0] == 1.5
        except Exception:  # sqlite3.OperationalError: a build without JSON1
            _json1 = False
    return _json1
