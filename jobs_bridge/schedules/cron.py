"""Cron expressions and time zones, read by croniter (a maintained library), never by hand.

Five fields (minute hour day month weekday) as in crontab, or six with seconds last (croniter's
extension: ``* * * * * */5`` is every five seconds), which tests and short intervals use.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from jobs_bridge.errors import BadRequest
from jobs_bridge.names import shown

CRON_MAX = 255
TZ_MAX = 64
MISSED_COUNT_CAP = 10_000  # counting further misses is pointless (and slow for a seconds cron)


def check_cron(value: object) -> str:
    """``value`` if croniter reads it as 5 or 6 fields, else a 400 that shows a valid one."""
    if not isinstance(value, str) or len(value) > CRON_MAX or len(value.split()) not in (5, 6) \
            or not croniter.is_valid(value):
        raise BadRequest(f"Invalid cron {shown(value)}: use five fields, minute hour day month weekday "
                         "(e.g. '0 3 * * *' for 03:00 every day), or six with seconds last.")
    return " ".join(value.split())


def check_timezone(value: object) -> str:
    """An IANA time zone name (``Europe/Berlin``), else a 400."""
    if not isinstance(value, str) or not value or len(value) > TZ_MAX or value.startswith(("/", ".")) \
            or ".." in value:
        raise BadRequest(f"Invalid time zone {shown(value)}: use an IANA name such as 'UTC' or 'Europe/Berlin'.")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"Unknown time zone {shown(value)}: use an IANA name such as 'UTC' or "
                         "'Europe/Berlin'.") from None
    return value


def next_after(cron: str, tz: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``cron`` names, read in time zone ``tz``, in UTC
    (SQLite keeps no zone: every stored time is UTC)."""
    result: datetime = croniter(cron, after.astimezone(ZoneInfo(tz))).get_next(datetime)
    return result.astimezone(timezone.utc)


def due_since(cron: str, tz: str, due: datetime, now: datetime) -> tuple[datetime, int]:
    """The newest due time at or before ``now`` from ``due`` on, and how many earlier ones it stands for."""
    newest, missed = due, 0
    it = croniter(cron, due.astimezone(ZoneInfo(tz)))
    while missed < MISSED_COUNT_CAP:
        following: datetime = it.get_next(datetime)
        if following > now:
            break
        newest, missed = following, missed + 1
    return newest.astimezone(timezone.utc), missed
