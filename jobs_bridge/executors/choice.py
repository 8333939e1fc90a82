"""Which runtime runs jobs: one place that maps FLOYD_JOB_EXECUTOR's names to executor classes."""

from __future__ import annotations

from jobs_bridge.executors.base import Executor
from jobs_bridge.executors.docker import DockerExecutor, docker_available
from jobs_bridge.executors.local import LocalExecutor
from jobs_bridge.executors.swarm import SwarmExecutor

RUNTIMES: dict[str, type[Executor]] = {"docker": DockerExecutor, "local": LocalExecutor, "swarm": SwarmExecutor}


def runtime_class(choice: str, configured: type[Executor] | None) -> type[Executor]:
    """FLOYD_JOB_EXECUTOR's ``choice``, else the configured class, else Docker when an engine
    answers, else local processes. ValueError (with the valid names) for an unknown name."""
    if choice and choice not in RUNTIMES:
        raise ValueError(f"FLOYD_JOB_EXECUTOR={choice!r}; use one of: {', '.join(RUNTIMES)}.")
    if choice:
        return RUNTIMES[choice]
    if configured is not None:
        return configured
    return DockerExecutor if docker_available() else LocalExecutor
