"""The life of endpoint replicas: start (a container or process on a free port), readiness,
logs, supervision with restarts, stop, and taking running ones back after a bridge restart.

A mixin of DeploymentManager (which decides *when* versions start and stop); it uses the
manager's sessions, executor, router, GPU allocator, limits and per-version log stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shlex
import socket
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs_bridge.errors import FloydError
from jobs_bridge.executors.base import ExecutorError, Mount, RunSpec
from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.orm import EndpointReplica, EndpointVersion
from jobs_bridge.serving.router import DEPLOYING, READY, LiveEndpoint, LiveVersion, Replica
from jobs_bridge.serving.upstream import UpstreamError
from jobs_bridge.watchers import watch

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from sqlalchemy.orm import sessionmaker

    from jobs_bridge.executors.base import Executor
    from jobs_bridge.resources.gpus import GpuAllocator
    from jobs_bridge.serving.deployments import ServingLimits
    from jobs_bridge.serving.router import Router
    from jobs_bridge.serving.spec import VersionResolver
    from jobs_bridge.storage.paths import StorageLayout

log = logging.getLogger("jobs_bridge.serving")
REPLICA_UID, REPLICA_GID = 1000, 100


class DeployFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ReplicaRun:
    """One attempt of one replica: its container (or process) and the future of its exit."""

    def __init__(self, replica: Replica, workdir: str, exit_future: asyncio.Future) -> None:
        self.replica = replica
        self.workdir = workdir
        self.exit = exit_future
        self.started = time.monotonic()


class ReplicaLifecycle:
    """What the manager provides (set in DeploymentManager.__init__)."""

    sessions: sessionmaker[Session]
    layout: StorageLayout
    resolver: VersionResolver
    gpus: GpuAllocator
    executor: Executor
    router: Router
    limits: ServingLimits
    public_url: str
    pool: ThreadPoolExecutor
    loop: asyncio.AbstractEventLoop | None
    logs: dict[int, LogStore]
    runs: dict[tuple[int, int], ReplicaRun]
    _closing: bool
    run: Callable[..., Coroutine[Any, Any, Any]]
    _spawn: Callable[[Any], None]
    version_dir: Callable[[str, str, int], Path]

    def attempt_name(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> str:
        return f"{ep.owner}/{ep.name}/v{lv.number}/r{r.index}/{r.restarts}"

    def locate(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica, free: bool) -> None:
        """Set where the replica's current attempt listens (``free``: pick a port for a new one)."""
        r.listen, r.host, port = self.executor.replica_address(self.attempt_name(ep, lv, r))
        if port:
            r.port = port
        elif free:
            r.port = free_port()

    async def _start_and_wait(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        run = await self._start_replica(ep, lv, r)
        await self._wait_ready(ep, lv, run)

    async def _start_replica(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> ReplicaRun:
        assert self.loop is not None
        r.state = "starting"
        r.ready = False
        if r.port:
            self.router.pool.drop(r.host, r.port)
        self.locate(ep, lv, r, free=True)
        spec = await self.run(self._replica_spec, ep, lv, r)
        self.logs[lv.id].append([f"[floyd] r{r.index}: starting (attempt {r.restarts + 1}, port {r.port})"])
        r.handle = await self.run(self.executor.start, spec)
        if r.state == "stopped" or lv.state not in (DEPLOYING, READY):  # stopped or deleted meanwhile
            await self.run(self.executor.stop, r.handle, spec.workdir, 1)
            await self.run(self.executor.cleanup, r.handle)
            raise DeployFailed(f"replica {r.index} was stopped before it was ready")
        await self.run(self._record_replica, lv.id, r)
        run = ReplicaRun(r, spec.workdir, watch(self.loop, self.executor.wait, r.handle, spec.workdir))
        self.runs[(lv.id, r.index)] = run
        self._spawn(self._stream_logs(lv, run, 0))
        return run

    def _replica_spec(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> RunSpec:
        with self.sessions.begin() as s:
            v = s.get(EndpointVersion, lv.id)
            assert v is not None
            holder = f"endpoint:{ep.owner}/{ep.name}/v{lv.number}/r{r.index}"
            devices = self.gpus.reserve(holder, ep.owner, v.gpus) if v.gpus else []
            row = s.scalar(select(EndpointReplica).where(EndpointReplica.version_id == v.id,
                                                         EndpointReplica.index == r.index))
            assert row is not None
            row.gpu_devices = json.dumps(devices)
            code = self.resolver.jobs.layout.version_dir(ep.owner, v.project, self._snapshot_number(s, ep, v), "code")
            entry, image, image_id, requirements = v.entry, v.image, v.image_id, v.requirements_hash
            inputs, cpus, memory, health = json.loads(v.inputs), v.cpus, v.memory, v.health_path
        work = self.version_dir(ep.owner, ep.name, lv.number) / f"r{r.index}"
        scratch = work / "output"
        scratch.mkdir(parents=True, exist_ok=True)
        # Per user and image id, as for jobs: one user's packages never reach another's endpoint.
        pip_cache = self.layout.root / "cache" / "pip" / ep.owner / hashlib.sha256(image_id.encode()).hexdigest()[:16]
        pip_cache.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (scratch, pip_cache):
                os.chown(path, REPLICA_UID, REPLICA_GID)
        # The code snapshot is immutable (read-only hardlinks): it is mounted as it is, no copy.
        mounts = [Mount(str(code), "/floyd/code", True), Mount(str(scratch), "/floyd/output", False),
                  Mount(str(pip_cache), "/floyd/cache/pip", False)]
        mounts += [Mount(i["path"], f"/floyd/input/{i['mount']}", True) for i in inputs]
        argv = ["python", "-m", "floyd.serving", "--entry", entry, "--port", str(r.port), "--host", r.listen]
        if requirements:  # floyd_requirements.txt: installed (cached by hash) before the server starts
            argv = ["python", "-m", "floyd.job_entry", "--command", shlex.join(argv)]
        env = {"FLOYD_ENDPOINT": f"{ep.owner}/{ep.name}", "FLOYD_ENDPOINT_VERSION": str(lv.number),
               "FLOYD_REPLICA": str(r.index), "FLOYD_CODE": "/floyd/code", "FLOYD_INPUT": "/floyd/input",
               "FLOYD_OUTPUT": "/floyd/output", "FLOYD_PIP_CACHE": "/floyd/cache/pip", "FLOYD_URL": self.public_url,
               "FLOYD_HEALTH_PATH": health, "FLOYD_PROXY_TOKEN": lv.token, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        return RunSpec(job_id=lv.id, name=self.attempt_name(ep, lv, r),
                       image=image, argv=argv, env=env, mounts=mounts, workdir=str(work), cpus=cpus, memory=memory,
                       gpu_devices=devices, labels={"org.floyd.owner": ep.owner}, kind="replica",
                       read_only_code=True)

    def _snapshot_number(self, s: Session, ep: LiveEndpoint, v: EndpointVersion) -> int:
        return self.resolver.jobs.datasets.snapshot_number(s, ep.owner, v.project, v.snapshot, "this version")

    def _record_replica(self, version_id: int, r: Replica) -> None:
        with self.sessions.begin() as s:
            row = s.scalar(select(EndpointReplica).where(EndpointReplica.version_id == version_id,
                                                         EndpointReplica.index == r.index))
            if row is not None:
                row.handle, row.port, row.restarts = r.handle, r.port, r.restarts

    async def _wait_ready(self, ep: LiveEndpoint, lv: LiveVersion, run: ReplicaRun) -> None:
        """Poll the readiness path until it answers 2xx; raise DeployFailed if the process ends."""
        r = run.replica
        path = await self.run(self._health_path, lv.id)
        delay = 0.05
        while True:
            if run.exit.done():
                code = run.exit.result() if not run.exit.exception() else -1
                await asyncio.sleep(0.3)  # let the last lines of its log arrive
                raise DeployFailed(f"replica {r.index} exited with code {code} before it was ready")
            if r.state == "stopped":
                raise DeployFailed(f"replica {r.index} was stopped before it was ready")
            try:
                resp = await self.router.pool.request(r.host, r.port, "GET", path,
                                                      [("X-Floyd-Proxy-Token", lv.token)], None, timeout=5)
                if resp.streaming:
                    async for _ in resp.chunks():
                        pass
                if 200 <= resp.status < 300:
                    break
            except UpstreamError:
                pass
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        r.state = "ready"
        r.ready = True
        self.logs[lv.id].append([f"[floyd] r{r.index}: ready ({path} answered)"])

    def _health_path(self, version_id: int) -> str:
        with self.sessions() as s:
            v = s.get(EndpointVersion, version_id)
            return (v.health_path if v else "") or "/_floyd/ready"

    async def _stream_logs(self, lv: LiveVersion, run: ReplicaRun, skip: int) -> None:
        assert self.loop is not None
        loop, logs, prefix = self.loop, self.logs.get(lv.id), f"[r{run.replica.index}] "
        if logs is None:
            return

        def emit(lines: list[str]) -> None:
            loop.call_soon_threadsafe(self._append, logs, [prefix + line for line in lines])

        try:
            await watch(loop, self.executor.stream_logs, run.replica.handle, run.workdir, skip, emit,
                        lambda: self._closing)
        except Exception as exc:  # a vanished container ends its log, nothing more
            log.debug("Log stream of %s ended: %s", run.replica.handle, exc)

    @staticmethod
    def _append(logs: LogStore, lines: list[str]) -> None:
        if not logs.complete:
            logs.append(lines)

    async def _supervise(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        """Restart a replica that ends on its own; it takes traffic again once it is ready."""
        while not self._closing:
            run = self.runs.get((lv.id, r.index))
            if run is None:
                return
            try:
                code = await run.exit
            except Exception:
                code = -1
            if self._closing or r.state == "stopped" or lv.state != READY:
                return
            r.ready = False
            r.state = "restarting"
            r.restarts += 1
            # Back off while it keeps crashing; after a good long run, start again at 1 s.
            ran = time.monotonic() - run.started
            r.crashes = 1 if ran > 60 else r.crashes + 1
            delay = min(self.limits.max_restart_delay, 2 ** min(r.crashes - 1, 10))
            self._append(self.logs[lv.id], [f"[floyd] r{r.index}: exited with code {code}; restarting in {delay:g} s"])
            await self.run(self.executor.cleanup, r.handle)
            await asyncio.sleep(delay)
            if self._closing or r.state == "stopped" or lv.state != READY:
                return
            try:
                new_run = await self._start_replica(ep, lv, r)
                r.state = "restarting"
                await asyncio.wait_for(self._wait_ready(ep, lv, new_run), self.limits.ready_timeout)
            except (DeployFailed, ExecutorError, FloydError, asyncio.TimeoutError) as exc:
                self._append(self.logs[lv.id], [f"[floyd] r{r.index}: restart failed: "
                                                f"{getattr(exc, 'message', '') or 'not ready in time'}"])
                continue

    async def _stop_replicas(self, ep: LiveEndpoint, lv: LiveVersion) -> None:
        async def stop(r: Replica) -> None:
            r.ready = False
            r.state = "stopped"
            self.router.pool.drop(r.host, r.port)
            run = self.runs.pop((lv.id, r.index), None)
            if r.handle:
                workdir = run.workdir if run else str(self.version_dir(ep.owner, ep.name, lv.number) / f"r{r.index}")
                await self.run(self.executor.stop, r.handle, workdir, self.limits.stop_grace)
                await self.run(self.executor.cleanup, r.handle)
            await self.run(self.gpus.release, f"endpoint:{ep.owner}/{ep.name}/v{lv.number}/r{r.index}")

        await asyncio.gather(*(stop(r) for r in lv.replicas))

    async def _readopt(self, ep: LiveEndpoint, lv: LiveVersion, row: EndpointReplica, found: Any) -> None:
        assert self.loop is not None
        r = Replica(index=row.index, port=row.port, handle=row.handle, restarts=row.restarts)
        self.locate(ep, lv, r, free=False)
        lv.replicas.append(r)
        lv.replicas.sort(key=lambda x: x.index)
        workdir = str(self.version_dir(ep.owner, ep.name, lv.number) / f"r{r.index}")
        if found is not None and found.running and found.handle == row.handle:
            run = ReplicaRun(r, workdir, watch(self.loop, self.executor.wait, r.handle, workdir))
            self.runs[(lv.id, r.index)] = run
            logs = self.logs[lv.id]
            skip = await self.run(self._lines_of_attempt, logs, r.index)
            self._spawn(self._stream_logs(lv, run, skip))
            try:
                await asyncio.wait_for(self._wait_ready(ep, lv, run), self.limits.ready_timeout)
                log.info("Re-attached %s/%s v%s r%s", ep.owner, ep.name, lv.number, r.index)
            except (DeployFailed, asyncio.TimeoutError):
                pass  # the supervisor restarts it
        else:
            if found is not None:
                await self.run(self.executor.cleanup, found.handle)
            loop = self.loop
            self.runs[(lv.id, r.index)] = ReplicaRun(r, workdir, loop.create_future())
            self.runs[(lv.id, r.index)].exit.set_result(-1)
        self._spawn(self._supervise(ep, lv, r))

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
