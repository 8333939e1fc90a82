"""The life of endpoint replicas: start (a container or process on a free port), readiness,
logs, supervision with restarts, stop, and taking running ones back after a bridge restart.

It decides nothing about *when* versions start and stop: the rollout (and the recovery at
start-up) call it; it never calls them back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.errors import FloydError
from jobs_bridge.executors.base import Executor, ExecutorError, FoundReplica, RunSpec
from jobs_bridge.executors.contract import ReplicaRun, replica_spec
from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.orm import EndpointReplica, EndpointVersion
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.serving.common import DeployFailed, ReplicaAttempt, ServingLimits, VersionLogs, gpu_holder
from jobs_bridge.serving.router import DEPLOYING, READY, LiveEndpoint, LiveVersion, Replica
from jobs_bridge.serving.tasks import TaskRunner
from jobs_bridge.serving.upstream import Pool, UpstreamError
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.storage.trees import TREES
from jobs_bridge.watchers import watch

log = logging.getLogger("jobs_bridge.serving")
DEFAULT_HEALTH_PATH = "/_floyd/ready"


class ReplicaLifecycle:
    """Starts, watches, restarts and stops the replicas of live versions.

    Contract:
    - ``start_and_wait(ep, lv, r)`` starts one attempt of ``r`` and returns once it passes its
      readiness check; it raises DeployFailed (the replica exited or was stopped first),
      ExecutorError or FloydError. It sets ``r.ready``, which is what puts ``r`` in the proxy's
      rotation; the caller bounds the wait (``limits.ready_timeout``).
    - ``supervise(ep, lv, r)`` runs until ``r`` is stopped, ``lv`` is no longer READY or the
      bridge closes, restarting ``r`` each time it ends on its own (with back-off).
    - ``stop_all(ep, lv)`` stops every replica of ``lv`` and releases their GPUs.
    - ``readopt(ep, lv, row, found)`` takes back a replica a previous bridge left running (or
      marks it gone, so its supervisor starts it again).
    It writes replica rows (handle, port, restarts, GPUs) and appends to ``logs[lv.id]``; it
    never changes a version's state.
    """

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, datasets: DatasetManager,
                 executor: Executor, pool: Pool, gpus: GpuAllocator, limits: ServingLimits, logs: VersionLogs,
                 tasks: TaskRunner, public_url: str) -> None:
        self.sessions = sessions
        self.layout = layout
        self.datasets = datasets
        self.executor = executor
        self.pool = pool
        self.gpus = gpus
        self.limits = limits
        self.logs = logs
        self.tasks = tasks
        self.public_url = public_url
        self.attempts: dict[tuple[int, int], ReplicaAttempt] = {}
        # Set by the data plane: takes replicas out of HAProxy and waits for what it sent them.
        self.quiesce: Callable[[LiveVersion, list[Replica], float], Awaitable[None]] | None = None

    # -- starting --------------------------------------------------------------------------
    @staticmethod
    def attempt_name(ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> str:
        return f"{ep.owner}/{ep.name}/v{lv.number}/r{r.index}/{r.restarts}"

    def workdir(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> str:
        return str(self.layout.replica_dir(ep.owner, ep.name, lv.number, r.index))

    def locate(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica, free: bool) -> None:
        """Set where the replica's current attempt listens (``free``: pick a port for a new one)."""
        r.listen, r.host, port = self.executor.replica_address(self.attempt_name(ep, lv, r))
        if port:
            r.port = port
        elif free:
            r.port = self.executor.free_port()

    async def start_and_wait(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        attempt = await self.start(ep, lv, r)
        await self.wait_ready(lv, attempt)

    async def start(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> ReplicaAttempt:
        """Start a new attempt of ``r`` on a new port, record it, and stream its log."""
        r.state = "starting"
        r.ready = False
        if r.port:
            self.pool.drop(r.host, r.port)
        await self.tasks.run(self.locate, ep, lv, r, True)  # a runtime may ask its engine for a port
        spec = await self.tasks.run(self.spec, ep, lv, r)
        self.logs[lv.id].append([f"[floyd] r{r.index}: starting (attempt {r.restarts + 1}, port {r.port})"])
        r.handle = await self.tasks.run(self.executor.start, spec)
        try:
            await self.place(lv, r)
        except ExecutorError:  # no machine took it: nothing of it may stay behind
            await self.tasks.run(self.executor.cleanup, r.handle)
            raise
        if r.state == "stopped" or lv.state not in (DEPLOYING, READY):  # stopped or deleted meanwhile
            await self.tasks.run(self.executor.stop, r.handle, spec.workdir, 1)
            await self.tasks.run(self.executor.cleanup, r.handle)
            raise DeployFailed(f"replica {r.index} was stopped before it was ready")
        await self.tasks.run(self._record_replica, lv.id, r)
        attempt = ReplicaAttempt(r, spec.workdir, watch(self.tasks.loop, self.executor.wait, r.handle, spec.workdir))
        self.attempts[(lv.id, r.index)] = attempt
        self.tasks.spawn(self._stream_logs(lv, attempt, 0))
        return attempt

    async def place(self, lv: LiveVersion, r: Replica) -> None:
        """Learn where the runtime put the started replica (a swarm node's address), so the
        readiness checks and the proxy reach it there."""
        r.host, r.node = await self.tasks.run(self.executor.replica_placement, r.handle, r.host)
        if r.node:
            self._append(self.logs[lv.id], [f"[floyd] r{r.index}: on node {r.node} ({r.host}:{r.port})"])

    def spec(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> RunSpec:
        """The attempt's RunSpec, from the contract; reserves the replica's GPUs (blocking)."""
        with self.sessions.begin() as s:
            v = s.get(EndpointVersion, lv.id)
            assert v is not None
            holder = gpu_holder(ep.owner, ep.name, lv.number, r.index)
            devices = self.gpus.reserve(holder, ep.owner, v.gpus) if v.gpus else []
            row = s.scalar(select(EndpointReplica).where(EndpointReplica.version_id == v.id,
                                                         EndpointReplica.index == r.index))
            assert row is not None
            row.gpu_devices = json.dumps(devices)
            number = self.datasets.snapshot_number(s, ep.owner, v.project, v.snapshot, "this version")
            # The code snapshot is immutable (read-only hardlinks): it is mounted as it is, no copy.
            run = ReplicaRun(
                version_id=lv.id, owner=ep.owner, endpoint=ep.name, version=lv.number, index=r.index,
                attempt=r.restarts, project=v.project,
                code_dir=str(self.layout.version_dir(ep.owner, v.project, number, "code")), image=v.image,
                image_id=v.image_id, entry=v.entry, listen=r.listen, port=r.port,
                requirements=bool(v.requirements_hash), inputs=json.loads(v.inputs), health_path=v.health_path,
                proxy_token=lv.token, cpus=v.cpus, memory=v.memory, gpu_devices=devices, model_dir=v.model_path,
                environment=v.environment)
        spec = replica_spec(self.layout, run, self.public_url)
        TREES.ready_all(m.source for m in spec.mounts)  # a version committed just now: its tree may be building
        return spec

    def _record_replica(self, version_id: int, r: Replica) -> None:
        with self.sessions.begin() as s:
            row = s.scalar(select(EndpointReplica).where(EndpointReplica.version_id == version_id,
                                                         EndpointReplica.index == r.index))
            if row is not None:
                row.handle, row.port, row.restarts = r.handle, r.port, r.restarts

    # -- readiness and logs ----------------------------------------------------------------
    async def wait_ready(self, lv: LiveVersion, attempt: ReplicaAttempt) -> None:
        """Poll the readiness path until it answers 2xx; raise DeployFailed if the process ends."""
        r = attempt.replica
        path = await self.tasks.run(self._health_path, lv.id)
        # A small app answers ~0.2 s after its container starts, and a request held at zero replicas
        # waits for exactly this: every 20 ms for the first 2 s (a refused loopback connect costs
        # nothing), then backing off to 0.5 s for apps that load a model first. Backing off from
        # the start (50, 75, 112, 169 ms…) found a 0.2 s replica ~70 ms late: a cold start 1.3×
        # a plain `docker run` polled every 20 ms.
        delay, fast_until = 0.02, time.monotonic() + 2.0
        while True:
            if attempt.exit.done():
                code = attempt.exit.result() if not attempt.exit.exception() else -1
                await asyncio.sleep(0.3)  # let the last lines of its log arrive
                raise DeployFailed(f"replica {r.index} exited with code {code} before it was ready")
            if r.state == "stopped":
                raise DeployFailed(f"replica {r.index} was stopped before it was ready")
            if await self._answers(lv, r, path):
                break
            await asyncio.sleep(delay)
            if time.monotonic() > fast_until:
                delay = min(delay * 1.5, 0.5)
        r.state = "ready"
        r.ready = True
        lv.replica_ready()
        self.logs[lv.id].append([f"[floyd] r{r.index}: ready ({path} answered)"])

    async def _answers(self, lv: LiveVersion, r: Replica, path: str) -> bool:
        """One readiness probe: does ``path`` answer 2xx (with the version's token) right now?"""
        try:
            resp = await self.pool.request(r.host, r.port, "GET", path, [("X-Floyd-Proxy-Token", lv.token)],
                                           None, timeout=5)
            if resp.streaming:
                async for _ in resp.chunks():
                    pass
            return 200 <= resp.status < 300
        except UpstreamError:
            return False

    def _health_path(self, version_id: int) -> str:
        with self.sessions() as s:
            v = s.get(EndpointVersion, version_id)
            return (v.health_path if v else "") or DEFAULT_HEALTH_PATH

    async def _stream_logs(self, lv: LiveVersion, attempt: ReplicaAttempt, skip: int) -> None:
        loop, logs, prefix = self.tasks.loop, self.logs.get(lv.id), f"[r{attempt.replica.index}] "
        if logs is None:
            return

        def emit(lines: list[str]) -> None:
            loop.call_soon_threadsafe(self._append, logs, [prefix + line for line in lines])

        try:
            await watch(loop, self.executor.stream_logs, attempt.replica.handle, attempt.workdir, skip, emit,
                        lambda: self.tasks.closing)
        except Exception as exc:  # a vanished container ends its log, nothing more
            log.debug("Log stream of %s ended: %s", attempt.replica.handle, exc)

    @staticmethod
    def _append(logs: LogStore, lines: list[str]) -> None:
        if not logs.complete:
            logs.append(lines)

    # -- supervision -----------------------------------------------------------------------
    def _goes_on(self, lv: LiveVersion, r: Replica) -> bool:
        return not (self.tasks.closing or r.state == "stopped" or lv.state != READY)

    async def supervise(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        """Restart a replica that ends on its own; it takes traffic again once it is ready."""
        while not self.tasks.closing:
            attempt = self.attempts.get((lv.id, r.index))
            if attempt is None:
                return
            why = ""
            try:
                code = await attempt.exit
            except ExecutorError as exc:  # e.g. its node went away: it is started again on another
                code, why = -1, exc.message
            except Exception:
                code = -1
            if not self._goes_on(lv, r):
                return
            r.ready = False
            r.state = "restarting"
            r.restarts += 1
            # Back off while it keeps crashing; after a good long run, start again at 1 s.
            ran = time.monotonic() - attempt.started
            r.crashes = 1 if ran > 60 else r.crashes + 1
            delay = min(self.limits.max_restart_delay, 2 ** min(r.crashes - 1, 10))
            ended = why or f"exited with code {code}"
            self._append(self.logs[lv.id], [f"[floyd] r{r.index}: {ended}; restarting in {delay:g} s"])
            await self.tasks.run(self.executor.cleanup, r.handle)
            await asyncio.sleep(delay)
            if not self._goes_on(lv, r):
                return
            await self._restart(ep, lv, r)

    async def _restart(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        try:
            attempt = await self.start(ep, lv, r)
            r.state = "restarting"
            await asyncio.wait_for(self.wait_ready(lv, attempt), self.limits.ready_timeout)
        except (DeployFailed, ExecutorError, FloydError, asyncio.TimeoutError) as exc:
            self._append(self.logs[lv.id], [f"[floyd] r{r.index}: restart failed: "
                                            f"{getattr(exc, 'message', '') or 'not ready in time'}"])

    # -- stopping --------------------------------------------------------------------------
    async def stop_all(self, ep: LiveEndpoint, lv: LiveVersion) -> None:
        """Stop every replica of ``lv`` (SIGTERM, ``stop_grace``, SIGKILL) and release its GPUs."""
        await asyncio.gather(*(self._stop(ep, lv, r) for r in lv.replicas))

    async def stop_one(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        """Stop one replica (a scale-down, after it drained) and forget its row."""
        await self._stop(ep, lv, r)
        if r in lv.replicas:
            lv.replicas.remove(r)
        await self.tasks.run(self._forget_replica, lv.id, r.index)

    def add_row(self, version_id: int, index: int) -> None:
        """The row of a replica the autoscaler adds, written before it starts (for recovery)."""
        with self.sessions.begin() as s:
            s.add(EndpointReplica(version_id=version_id, index=index))

    def _forget_replica(self, version_id: int, index: int) -> None:
        with self.sessions.begin() as s:
            row = s.scalar(select(EndpointReplica).where(EndpointReplica.version_id == version_id,
                                                         EndpointReplica.index == index))
            if row is not None:
                s.delete(row)

    async def _stop(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        r.ready = False
        if self.quiesce is not None and r.state != "stopped":
            await self.quiesce(lv, [r], self.limits.drain_timeout)
        r.state = "stopped"
        self.pool.drop(r.host, r.port)
        attempt = self.attempts.pop((lv.id, r.index), None)
        if r.handle:
            workdir = attempt.workdir if attempt else self.workdir(ep, lv, r)
            await self.tasks.run(self.executor.stop, r.handle, workdir, self.limits.stop_grace)
            await self.tasks.run(self.executor.cleanup, r.handle)
        await self.tasks.run(self.gpus.release, gpu_holder(ep.owner, ep.name, lv.number, r.index))

    # -- after a bridge restart ------------------------------------------------------------
    async def readopt(self, ep: LiveEndpoint, lv: LiveVersion, row: EndpointReplica,
                      found: FoundReplica | None) -> None:
        """Take back the replica of ``row`` if ``found`` still runs it; then supervise it."""
        r = Replica(index=row.index, port=row.port, handle=row.handle, restarts=row.restarts)
        self.locate(ep, lv, r, free=False)
        lv.replicas.append(r)
        lv.replicas.sort(key=lambda x: x.index)
        workdir = self.workdir(ep, lv, r)
        if found is not None and found.running and found.handle == row.handle:
            await self._reattach(ep, lv, r, workdir)
        else:
            if found is not None:
                await self.tasks.run(self.executor.cleanup, found.handle)
            gone: asyncio.Future[Any] = self.tasks.loop.create_future()
            gone.set_result(-1)
            self.attempts[(lv.id, r.index)] = ReplicaAttempt(r, workdir, gone)
        self.tasks.spawn(self.supervise(ep, lv, r))

    async def _reattach(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica, workdir: str) -> None:
        try:
            await self.place(lv, r)
        except ExecutorError as exc:
            log.warning("Replica %s of %s/%s v%s not found again: %s", r.index, ep.owner, ep.name, lv.number, exc)
        attempt = ReplicaAttempt(r, workdir, watch(self.tasks.loop, self.executor.wait, r.handle, workdir))
        self.attempts[(lv.id, r.index)] = attempt
        skip = await self.tasks.run(self._lines_of_attempt, self.logs[lv.id], r.index)
        self.tasks.spawn(self._stream_logs(lv, attempt, skip))
        try:
            await asyncio.wait_for(self.wait_ready(lv, attempt), self.limits.ready_timeout)
            log.info("Re-attached %s/%s v%s r%s", ep.owner, ep.name, lv.number, r.index)
        except (DeployFailed, asyncio.TimeoutError):
            pass  # the supervisor restarts it

    @staticmethod
    def _lines_of_attempt(logs: LogStore, index: int) -> int:
        """Lines this replica's current container already logged (they are in the file)."""
        marker, prefix, count = f"[floyd] r{index}: starting", f"[r{index}] ", 0
        for line in logs.read():
            if line.startswith(marker):
                count = 0
            elif line.startswith(prefix):
                count += 1
        return count
