"""What the deployment manager, the rollout, the replica lifecycle and the recovery share.

Small types only, no behaviour: each of those modules imports this one and none of them
imports the manager, so the manager can own its collaborators without import circles.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass

from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.serving.router import Replica

# version id → its log (every replica's lines, tagged [rN]); shared by reference, written on the loop
VersionLogs = dict[int, LogStore]


class DeployFailed(Exception):
    """A replica could not get ready (it exited, or it was stopped first): the deploy fails with this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ServingLimits:
    """The DeploymentManager's time settings, handed to its collaborators (seconds)."""

    ready_timeout: float  # a new replica may take this long to pass its readiness check
    drain_timeout: float  # a replaced version may take this long to finish its in-flight requests
    stop_grace: float  # between SIGTERM and SIGKILL when a replica stops
    max_restart_delay: float  # cap of the back-off between restarts of a crashing replica


class ReplicaAttempt:
    """One attempt of one replica: its container (or process) and the future of its exit."""

    def __init__(self, replica: Replica, workdir: str, exit_future: asyncio.Future) -> None:
        self.replica = replica
        self.workdir = workdir
        self.exit = exit_future
        self.started = time.monotonic()


def proxy_token(secret: bytes, version_id: int) -> str:
    """The version's replicas answer only requests carrying this; derived from the bridge's
    secret, so a restarted bridge knows it without storing it."""
    return hmac.new(secret, f"endpoint-version:{version_id}".encode(), hashlib.sha256).hexdigest()


def gpu_holder(owner: str, name: str, number: int, index: int) -> str:
    """Who holds a replica's GPUs in the allocator (reserved at start, released at stop)."""
    return f"endpoint:{owner}/{name}/v{number}/r{index}"
