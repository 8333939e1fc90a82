"""Job states. ``queued → starting → running → succeeded | failed | stopped | timed_out | lost``."""

from __future__ import annotations

QUEUED = "queued"
STARTING = "starting"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
STOPPED = "stopped"
TIMED_OUT = "timed_out"
LOST = "lost"

ACTIVE = frozenset({STARTING, RUNNING})
FINISHED = frozenset({SUCCEEDED, FAILED, STOPPED, TIMED_OUT, LOST})
ALL = (QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, STOPPED, TIMED_OUT, LOST)
