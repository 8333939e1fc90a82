"""The bridge's one clock: timezone-aware UTC, so every stored time compares with every other."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for what was stored as UTC; make them aware again."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
