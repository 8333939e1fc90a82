"""The bridge's one clock: timezone-aware UTC, so every stored time compares with every other."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: datetime | None) -> datetime | None: ...
def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for what was stored as UTC; make them aware again
    (a column that may be empty stays ``None``)."""
    if value is None or value.tzinfo:
        return value
    return value.replace(tzinfo=timezone.utc)
