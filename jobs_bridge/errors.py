"""One exception tree for the bridge, so every failure reaches the client the same way.

::

    FloydError (status, message shown to the user, log_message for the log only)
     ├── BadRequest        400  malformed input: names, paths, manifests, JSON
     ├── Unauthorized      401  no or invalid credentials
     ├── Forbidden         403  you can see it, but may not change it
     ├── NotFound          404  unknown, or private to someone else (never revealed)
     ├── Conflict          409  state does not allow it (version exists, offset mismatch)
     ├── TooLarge          413  quota or size limit exceeded
     ├── Unprocessable     422  well-formed but impossible
     ├── TooManyRequests   429  a rate or concurrency limit; retry_after seconds go in Retry-After
     ├── NotImplementedRoute 501  a route of a foreign API (MLflow's) the bridge does not implement
     ├── Unavailable       503  something the bridge depends on (JupyterHub, the database) did not answer
     └── InsufficientStorage 507  the disk under FLOYD_ROOT (or SQLite's) is full

Failures of the platform itself arrive as other exceptions (``OSError`` from a full disk,
SQLAlchemy's when the database is down). ``translate`` is the one place that turns them into
this tree, so handlers and the job runner word them the same way.
"""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy import exc as sa_exc

STORAGE_FULL = "The platform's storage is full (no space left on device); ask the administrator to free space, then try again."
DATABASE_DOWN = "The platform's database is not answering; try again in a moment."


class FloydError(Exception):
    status: int = 500

    def __init__(self, message: str, *, log_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_message = log_message or message


class BadRequest(FloydError):
    status = 400


class Unauthorized(FloydError):
    status = 401


class Forbidden(FloydError):
    status = 403


class NotFound(FloydError):
    status = 404


class Conflict(FloydError):
    status = 409


class TooLarge(FloydError):
    status = 413


class Unprocessable(FloydError):
    status = 422


class TooManyRequests(FloydError):
    status = 429

    def __init__(self, message: str, retry_after: int, *, log_message: str | None = None) -> None:
        super().__init__(message, log_message=log_message)
        self.retry_after = retry_after


class NotImplementedRoute(FloydError):
    status = 501


class Unavailable(FloydError):
    status = 503


class InsufficientStorage(FloydError):
    status = 507


NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def storage_full(exc: BaseException) -> bool:
    """A write failed for lack of space: ``OSError(ENOSPC/EDQUOT)``, or SQLite's "database or
    disk is full" (its file lives under FLOYD_ROOT by default), bare or wrapped by SQLAlchemy."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError):
        return exc.errno in NO_SPACE_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return False


def database_down(exc: BaseException) -> bool:
    """SQLAlchemy could not reach the database (server stopped, connection cut, pool timeout)."""
    if isinstance(exc, sa_exc.DBAPIError):
        if isinstance(exc.orig, sqlite3.Error):  # SQLite has no server: only a lock held too long
            return "locked" in str(exc.orig)
        return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) or exc.connection_invalidated
    return isinstance(exc, sa_exc.TimeoutError)


def translate(exc: BaseException) -> FloydError | None:
    """The user-facing error for a failure of the platform itself, or None for a bug."""
    if isinstance(exc, FloydError):
        return exc
    detail = f"{type(exc).__name__}: {exc}"
    if storage_full(exc):
        return InsufficientStorage(STORAGE_FULL, log_message=detail)
    if database_down(exc):
        return Unavailable(DATABASE_DOWN, log_message=detail)
    return None
