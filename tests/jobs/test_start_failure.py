"""The reason a job that could not start is recorded with: a stated refusal keeps its own words,
whether it came while preparing or from the executor; anything else says where it happened and
is marked unexpected (the runner logs its traceback)."""

from __future__ import annotations

import errno

from jobs_bridge.errors import Unprocessable
from jobs_bridge.executors.base import ExecutorError
from jobs_bridge.jobs.outcome import Preparing, start_failure


def preparing(exc: Exception) -> Preparing:
    try:
        raise Preparing() from exc
    except Preparing as wrapped:
        return wrapped


def test_refusals_keep_their_words() -> None:
    assert start_failure(preparing(Unprocessable("input 'mnist:3' does not exist"))) == (
        "input 'mnist:3' does not exist", False)
    assert start_failure(preparing(ExecutorError("2 GPU(s) asked for, but this host has none"))) == (
        "2 GPU(s) asked for, but this host has none", False)
    assert start_failure(ExecutorError("The environment image x is not built on this host")) == (
        "The environment image x is not built on this host", False)


def test_the_platform_failing_says_where() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    reason, unexpected = start_failure(preparing(full))
    assert reason.startswith("while preparing: ") and "space" in reason and unexpected
    reason, unexpected = start_failure(preparing(KeyError("code_mount")))
    assert reason == "while preparing: internal error: 'code_mount'" and unexpected
    reason, unexpected = start_failure(RuntimeError("engine said no"))
    assert reason == "the executor could not start it: engine said no" and unexpected
