"""The schedule clock's arithmetic without a platform: due times in a time zone, stored in UTC,
and any number of missed due times caught up as one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jobs_bridge.errors import BadRequest
from jobs_bridge.schedules.cron import check_cron, check_timezone, due_since, next_after

UTC = timezone.utc


def test_next_due_time_is_read_in_the_schedules_time_zone() -> None:
    winter = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert next_after("0 3 * * *", "Europe/Berlin", winter) == datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 5, 12, 0, tzinfo=UTC)
    assert next_after("0 3 * * *", "Europe/Berlin", summer) == datetime(2026, 7, 6, 1, 0, tzinfo=UTC)
    assert next_after("* * * * * */10", "UTC", winter) == datetime(2026, 12, 5, 12, 0, 10, tzinfo=UTC)


def test_missed_due_times_are_one_run() -> None:
    due = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    newest, missed = due_since("0 * * * *", "UTC", due, datetime(2026, 12, 5, 7, 30, tzinfo=UTC))
    assert (newest, missed) == (datetime(2026, 12, 5, 7, 0, tzinfo=UTC), 4)
    assert due_since("0 * * * *", "UTC", due, due) == (due, 0)


@pytest.mark.parametrize("cron", ["", "61 * * * *", "* * *", "* * * * * * *", "every day", 5, None, "x" * 4096])
def test_bad_cron(cron: object) -> None:
    with pytest.raises(BadRequest, match="Invalid cron"):
        check_cron(cron)


@pytest.mark.parametrize("tz", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", 3, "x" * 4096])
def test_bad_time_zone(tz: object) -> None:
    with pytest.raises(BadRequest, match="time zone"):
        check_timezone(tz)


def test_cron_is_normalized() -> None:
    assert check_cron("  0   3 * * mon ") == "0 3 * * mon"
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
