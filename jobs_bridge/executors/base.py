"""The executor contract.

An executor starts a job's process from a :class:`RunSpec`, streams its output, waits for it,
stops it, and finds running jobs again after the bridge restarts. It never decides *what*
runs or *when*: the job queue and runner do. What a container gets (mounts, environment, user,
labels) is the contract's (executors/contract.py); an executor only translates it for its
runtime. Methods may block; the callers run them in threads.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets.config import LoggingConfigurable

from jobs_bridge.errors import Conflict, Unavailable
from jobs_bridge.executors.contract import Mount, RunSpec
from jobs_bridge.storage.paths import StorageLayout

__all__ = ["EngineUnavailable", "Executor", "ExecutorError", "Found", "FoundReplica", "LineSplitter", "Mount",
           "RunEnded", "RunSpec"]


class ExecutorError(Exception):
    """The job could not be started; ``message`` says why in words a user can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RunEnded(ExecutorError):
    """``wait`` knows the run ended without an exit code: ``lost`` (its machine went away) or it
    never started there (``lost=False``: the job failed). ``message`` says which, for the user."""

    def __init__(self, message: str, lost: bool) -> None:
        super().__init__(message)
        self.lost = lost


ENGINE_DOWN = "Docker engine unavailable: it is not answering (stopped or restarting); try again in a moment."


class EngineUnavailable(ExecutorError, Unavailable):
    """The runtime itself (the Docker engine) did not answer. Also an ``Unavailable``, so a
    request that meets it answers 503; the runner waits for the engine instead of guessing."""

    def __init__(self, message: str = ENGINE_DOWN) -> None:
        super().__init__(message)


@dataclass
class Found:
    """A job process found by its labels after a restart."""

    job_id: int
    handle: str
    running: bool
    exit_code: int | None


@dataclass
class FoundReplica:
    """An endpoint replica found by its labels after a restart."""

    version_id: int
    index: int
    handle: str
    running: bool


class LineSplitter:
    """Bytes in, complete lines out; the first ``skip`` lines (already persisted) are dropped."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.seen = 0
        self.pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        return self._keep(lines)

    def close(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return self._keep([rest]) if rest else []

    def _keep(self, lines: list[bytes]) -> list[str]:
        out = []
        for raw in lines:
            self.seen += 1
            if self.seen > self.skip:
                out.append(raw.decode("utf-8", "replace").rstrip("\r"))
        return out


class Executor(LoggingConfigurable):
    """Subclasses are constructed as ``cls(root, instance, parent=app)``: the storage root
    (FLOYD_ROOT), a short id of this platform (for names and labels when several share one
    engine), and the app whose config sets their traits (``c.DockerExecutor.network``)."""

    name = "base"
    # True where a started run may wait for a place to run (a Swarm task pending for a node):
    # the runner then keeps the job ``starting``, with ``pending_reason``, until it runs.
    places_later = False

    def __init__(self, root: Path, instance: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.layout = StorageLayout(root)
        self.instance = instance

    def start(self, spec: RunSpec) -> str:
        """Start the job and return a handle (container id, pid); raise ExecutorError."""
        raise NotImplementedError

    def pending_reason(self, handle: str) -> str | None:
        """Why a started run does not run yet, in words for the user ("waiting for a node: no
        suitable node …"); None once it runs or ended. Asked only where ``places_later``."""
        return None

    def stream_logs(self, handle: str, spec_workdir: str, skip_lines: int, emit: Callable[[list[str]], None],
                    stopped: Callable[[], bool]) -> None:
        """Call ``emit`` with batches of output lines, after skipping the first ``skip_lines``,
        until the process ends and its output is drained (or ``stopped()``)."""
        raise NotImplementedError

    def wait(self, handle: str, spec_workdir: str) -> int:
        """Block until the job ends; return its exit code."""
        raise NotImplementedError

    def stop(self, handle: str, spec_workdir: str, grace: float = 10) -> None:
        raise NotImplementedError

    def cleanup(self, handle: str) -> None:
        """Remove what is left of a finished job (the container); its files stay."""

    def find(self) -> Iterator[Found]:
        """Jobs this executor is running or ran, found by their labels / pid files."""
        raise NotImplementedError

    def replica_address(self, name: str) -> tuple[str, str, int]:
        """Where an endpoint replica called ``name`` (owner/endpoint/vN/rI/attempt) listens and
        how the bridge reaches it: (listen host, connect host, port; 0 = any free port)."""
        return "127.0.0.1", "127.0.0.1", 0

    def free_port(self) -> int:
        """A port for a new replica, free where it will run (here: this machine's loopback)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def replica_placement(self, handle: str, connect: str) -> tuple[str, str]:
        """Where the bridge reaches a started replica and on which machine: (connect host, node
        name). On one machine that is ``connect`` from ``replica_address`` and no node; a runtime of
        several machines learns it only once the replica is placed (a swarm node's address)."""
        return connect, ""

    def find_replicas(self) -> Iterator[FoundReplica]:
        """Endpoint replicas this executor started (running or not)."""
        raise NotImplementedError

    def image_id(self, image: str) -> str:
        raise NotImplementedError

    def image_packages(self, image: str) -> list[str]:
        """The installed packages of an environment image (captured once per image id)."""
        raise NotImplementedError

    def system_stats(self, handle: str) -> dict[str, float]:
        """CPU percent and memory bytes of the job right now ({} when unknown)."""
        return {}

    def gpu_devices(self) -> list[str] | None:
        """The GPU ids this runtime offers, where it knows better than ``nvidia-smi`` on the
        bridge's machine (a swarm's nodes advertise theirs); None: not this runtime's to say."""
        return None

    def nodes(self) -> list[dict[str, Any]]:
        """The machines this runtime places work on (``floyd admin nodes``); [] for one machine."""
        return []

    def set_availability(self, name: str, availability: str) -> dict[str, Any]:
        """Drain a node (no new work; running work finishes) or make it active again."""
        raise Conflict(f"Nodes can be drained only with the swarm runtime (FLOYD_JOB_EXECUTOR=swarm); this "
                       f"platform runs jobs with the {self.name} runtime, on one machine.")

    def sees_bridge_mounts(self) -> bool:
        """Does what this executor starts see the mounts the bridge makes (a job's code overlay)?
        Local processes do: they share the bridge's mount namespace."""
        return True
