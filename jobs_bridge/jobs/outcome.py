"""What a run's end leaves: the reason words for the platform's own failures and for a job that
could not start, whether a failed job's disk was full, and its output made final."""

from __future__ import annotations

import os
from pathlib import Path

from jobs_bridge.errors import FloydError, translate
from jobs_bridge.executors.base import ExecutorError

LOW_SPACE = 1 << 20  # bytes free under a failed job's directory below which its disk counts as full
DISK_FULL = "the platform's disk was full (no space left on device); output and log may be incomplete"


def failure_reason(exc: BaseException) -> str:
    """A job's reason for an exception of the platform (full disk, database down) or a bug."""
    mapped = translate(exc)
    return mapped.message if mapped is not None else f"internal error: {exc}"


class Preparing(Exception):
    """Raised from its cause: preparing the job failed, not starting it (the reason says which)."""


def start_failure(exc: Exception) -> tuple[str, bool]:
    """The reason recorded for a job that could not be prepared or started, and whether it is
    unexpected (a bug or an outage: worth a traceback in the log) rather than a stated refusal."""
    cause = (exc.__cause__ or exc) if isinstance(exc, Preparing) else exc
    if isinstance(cause, (FloydError, ExecutorError)):
        return cause.message, False
    if isinstance(exc, Preparing):
        return f"while preparing: {failure_reason(cause)}", True
    return f"the executor could not start it: {exc}", True


def disk_full(path: str) -> bool:
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < LOW_SPACE


def freeze_output(output: Path) -> None:
    """Outputs are final once the job ended: read-only, so they can become a dataset version by
    hardlink without copying bytes."""
    for dirpath, _dirs, files in os.walk(output):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o444)
