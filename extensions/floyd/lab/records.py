"""Reading a job record of the API: has it ended, how long has it run."""

from __future__ import annotations

import time
from datetime import datetime, timezone

ENDED = frozenset({"succeeded", "failed", "stopped", "timed_out", "lost"})


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def elapsed(record: dict, now: float | None = None) -> float | None:
    """Seconds the job has run (or ran); None before it started."""
    if record.get("duration") is not None and record.get("state") in ENDED:
        return float(record["duration"])
    started = parse_time(record.get("started_at"))
    if started is None:
        return None
    finished = parse_time(record.get("finished_at"))
    return max(0.0, (finished or now or time.time()) - started)
