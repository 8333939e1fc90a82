"""The DeploymentManager: endpoints, their immutable versions, and the rollout between them.

A deploy starts every replica of the new version, waits until each passes its readiness
check, and only then makes the version the newest *ready* one, which is where unpinned
traffic goes from that instant. The version it replaces drains (its in-flight requests
finish; it takes no new ones) and stops. A version that never gets ready fails with its
log, and the previous one never stopped serving. Rows (versions, replicas with their ports)
are written before containers start, so a restarted bridge routes to the same replicas.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.access import Caller, check_access
from jobs_bridge.errors import BadRequest, Conflict, FloydError, NotFound, Unprocessable
from jobs_bridge.executors.base import Executor, ExecutorError
from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import Endpoint, EndpointKey, EndpointMetric, EndpointReplica, EndpointVersion
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.serving.keys import KeyStore, key_json
from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.records import endpoint_json, version_json
from jobs_bridge.serving.replicas import DeployFailed, ReplicaLifecycle, ReplicaRun
from jobs_bridge.serving.router import (
    DEPLOYING,
    DRAINING,
    FAILED,
    READY,
    STOPPED,
    LiveEndpoint,
    LiveVersion,
    Replica,
    Router,
)
from jobs_bridge.serving.spec import VersionResolver, VersionSpec
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.validate import only_keys

log = logging.getLogger("jobs_bridge.serving")
T = TypeVar("T")
LOG_TAIL = 40


@dataclass(frozen=True)
class ServingLimits:
    ready_timeout: float  # seconds a new replica may take to pass its readiness check
    drain_timeout: float  # seconds a replaced version may take to finish its in-flight requests
    stop_grace: float  # seconds between SIGTERM and SIGKILL when a replica stops
    max_restart_delay: float  # cap of the back-off between restarts of a crashing replica


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DeploymentManager(ReplicaLifecycle):
    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, resolver: VersionResolver,
                 gpus: GpuAllocator, executor: Executor, router: Router, keys: KeyStore, limits: ServingLimits,
                 public_url: str, service_prefix: str, secret: bytes) -> None:
        self.sessions = sessions
        self.layout = layout
        self.resolver = resolver
        self.gpus = gpus
        self.executor = executor
        self.router = router
        self.keys = keys
        self.limits = limits
        self.public_url = public_url
        self.service_prefix = service_prefix
        self.secret = secret
        self.root = layout.root / "endpoints"
        self.pool = ThreadPoolExecutor(64, thread_name_prefix="serving")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.logs: dict[int, LogStore] = {}
        self.runs: dict[tuple[int, int], ReplicaRun] = {}
        self.tasks: set[asyncio.Future] = set()
        self._closing = False

    # -- helpers -------------------------------------------------------------------------
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self.loop is not None
        return await self.loop.run_in_executor(self.pool, lambda: fn(*args))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def proxy_token(self, version_id: int) -> str:
        """The version's replicas answer only requests carrying this (derived, so a restarted
        bridge knows it without storing it)."""
        return hmac.new(self.secret, f"endpoint-version:{version_id}".encode(), hashlib.sha256).hexdigest()

    def live_version(self, version_id: int, number: int, state: str, stats: str = "{}") -> LiveVersion:
        return LiveVersion(version_id, number, state, VersionStats(version_id, stats), token=self.proxy_token(version_id))

    def url(self, owner: str, name: str) -> str:
        return f"{self.public_url.rstrip('/')}{self.service_prefix.rstrip('/')}/endpoints/{owner}/{name}/"

    def version_dir(self, owner: str, name: str, number: int) -> Path:
        return self.root / check_owner(owner) / check_name(name, "endpoint name") / f"v{int(number)}"

    def log_path(self, owner: str, name: str, number: int) -> Path:
        return self.version_dir(owner, name, number) / "logs" / "output.log"

    @staticmethod
    def _find(s: Session, caller: Caller, owner: str, name: str) -> Endpoint:
        ep = s.scalar(select(Endpoint).where(Endpoint.owner == check_owner(owner),
                                             Endpoint.name == check_name(name, "endpoint name")))
        if ep is None:
            raise NotFound(f"Endpoint {owner}/{name} not found.")
        check_access(caller, ep.owner, False, f"Endpoint {owner}/{name}")
        return ep

    @staticmethod
    def _version(s: Session, ep: Endpoint, number: object) -> EndpointVersion:
        try:
            n = int(str(number).lstrip("v"))
        except ValueError:
            raise BadRequest(f"Invalid version {number!r}: use a number such as 3.") from None
        v = s.scalar(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id, EndpointVersion.number == n))
        if v is None:
            raise NotFound(f"Endpoint {ep.owner}/{ep.name} has no version {n}.")
        return v

    def _version_json(self, s: Session, ep: Endpoint, v: EndpointVersion) -> dict:
        replicas = list(s.scalars(select(EndpointReplica).where(EndpointReplica.version_id == v.id)))
        return version_json(v, ep.owner, replicas, self.router.by_version.get(v.id), self.url(ep.owner, ep.name))

    def _endpoint_json(self, s: Session, ep: Endpoint, limit: int = 20) -> dict:
        versions = list(s.scalars(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id)
                                  .order_by(EndpointVersion.number.desc()).limit(limit)))
        live = self.router.endpoint(ep.owner, ep.name)
        latest = live.latest() if live else None
        keys = s.scalar(select(func.count()).select_from(EndpointKey).where(
            EndpointKey.endpoint_id == ep.id, EndpointKey.revoked_at.is_(None))) or 0
        return endpoint_json(ep, self.url(ep.owner, ep.name), latest.number if latest else None,
                             [self._version_json(s, ep, v) for v in versions], keys)

    # -- endpoints -----------------------------------------------------------------------
    async def create(self, caller: Caller, body: dict) -> dict:
        def insert_row() -> tuple[dict, LiveEndpoint]:
            only_keys(body, {"name", "owner", "public", "description"})
            name = check_name(body.get("name"), "endpoint name")
            owner = check_owner(body.get("owner") or caller.name)
            if owner != caller.name and not caller.admin:
                raise BadRequest(f"You can create endpoints for yourself ({caller.name}), not for {owner}.")
            public, description = body.get("public", False), body.get("description") or ""
            if not isinstance(public, bool) or not isinstance(description, str) or len(description) > 10_000:
                raise BadRequest("'public' must be true or false and 'description' a string.")
            with self.sessions.begin() as s:
                if s.scalar(select(Endpoint.id).where(Endpoint.owner == owner, Endpoint.name == name)):
                    raise Conflict(f"Endpoint {owner}/{name} exists already; deploy a new version to it.")
                ep = Endpoint(owner=owner, name=name, public=public, description=description)
                s.add(ep)
                s.flush()
                return self._endpoint_json(s, ep), LiveEndpoint(ep.id, owner, name, public)

        result, live = await self.run(insert_row)
        self.router.add_endpoint(live)
        return result

    def list(self, caller: Caller) -> list[dict]:
        with self.sessions() as s:
            q = select(Endpoint).order_by(Endpoint.owner, Endpoint.name)
            if not caller.admin:
                q = q.where(Endpoint.owner == caller.name)
            return [self._endpoint_json(s, ep, limit=3) for ep in s.scalars(q)]

    def get(self, caller: Caller, owner: str, name: str) -> dict:
        with self.sessions() as s:
            return self._endpoint_json(s, self._find(s, caller, owner, name))

    async def update(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        def change() -> tuple[dict, bool]:
            only_keys(body, {"public", "description"})
            with self.sessions.begin() as s:
                ep = self._find(s, caller, owner, name)
                if "public" in body:
                    if not isinstance(body["public"], bool):
                        raise BadRequest("'public' must be true or false.")
                    ep.public = body["public"]
                if "description" in body:
                    if not isinstance(body["description"], str) or len(body["description"]) > 10_000:
                        raise BadRequest("'description' must be a string of at most 10,000 characters.")
                    ep.description = body["description"]
                return self._endpoint_json(s, ep), ep.public

        result, public = await self.run(change)
        live = self.router.endpoint(owner, name)
        if live is not None:
            live.public = public
        return result

    async def delete(self, caller: Caller, owner: str, name: str) -> None:
        def lookup() -> int:
            with self.sessions() as s:
                return self._find(s, caller, owner, name).id

        await self.run(lookup)
        live = self.router.endpoint(owner, name)
        if live is not None:
            await asyncio.gather(*(self._retire(live, v, "the endpoint was deleted", drain=True)
                                   for v in list(live.versions.values()) if v.state in (READY, DEPLOYING, DRAINING)))
            self.router.remove_endpoint(owner, name)

        def remove() -> None:
            with self.sessions.begin() as s:
                ep = self._find(s, caller, owner, name)
                s.delete(ep)
            shutil.rmtree(self.root / owner / name, ignore_errors=True)
            self.keys.reload()

        await self.run(remove)

    # -- versions ------------------------------------------------------------------------
    def versions(self, caller: Caller, owner: str, name: str) -> list[dict]:
        with self.sessions() as s:
            ep = self._find(s, caller, owner, name)
            rows = s.scalars(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id)
                             .order_by(EndpointVersion.number.desc()))
            return [self._version_json(s, ep, v) for v in rows]

    def version(self, caller: Caller, owner: str, name: str, number: str) -> dict:
        with self.sessions() as s:
            ep = self._find(s, caller, owner, name)
            return self._version_json(s, ep, self._version(s, ep, number))

    async def deploy(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        """Record the new version and start its rollout; returns at once (state ``deploying``)."""
        version_id, number, result = await self.run(self._new_version, caller, owner, name, body)
        live = self.router.endpoint(owner, name)
        assert live is not None
        lv = self.live_version(version_id, number, DEPLOYING)
        self.router.add_version(live, lv)
        self.logs[version_id] = LogStore(self.log_path(owner, name, number))
        self._spawn(self._rollout(live, lv))
        return result

    def _new_version(self, caller: Caller, owner: str, name: str, body: dict) -> tuple[int, int, dict]:
        with self.sessions() as s:
            ep = self._find(s, caller, owner, name)
            spec = self.resolver.resolve(s, caller, ep.owner, body)
        try:
            image_id = self.executor.image_id(spec.env.image)
        except ExecutorError as exc:
            raise Unprocessable(exc.message) from None
        with self.sessions.begin() as s:
            ep = self._find(s, caller, owner, name)
            ep.last_number += 1
            v = self._version_row(ep, spec, image_id, caller)
            s.add(v)
            s.flush()
            for i in range(spec.replicas):
                s.add(EndpointReplica(version_id=v.id, index=i))
            s.flush()
            self.version_dir(owner, name, v.number).mkdir(parents=True, exist_ok=True)
            return v.id, v.number, self._version_json(s, ep, v)

    @staticmethod
    def _version_row(ep: Endpoint, spec: VersionSpec, image_id: str, caller: Caller) -> EndpointVersion:
        return EndpointVersion(
            endpoint_id=ep.id, number=ep.last_number, state=DEPLOYING,
            reason=f"starting {spec.replicas} replica(s)", project=spec.project, snapshot=spec.snapshot,
            requirements_hash=spec.requirements_hash, entry=spec.entry, environment=spec.env.name,
            image=spec.env.image, image_id=image_id, cpus=spec.cpus, memory=spec.memory, gpus=spec.gpus,
            replicas=spec.replicas, inputs=json.dumps([i.record() | {"path": i.path} for i in spec.inputs]),
            health_path=spec.health_path, message=spec.message, created_by=caller.name,
        )

    async def stop_version(self, caller: Caller, owner: str, name: str, number: str) -> dict:
        def lookup() -> tuple[int, str]:
            with self.sessions() as s:
                v = self._version(s, self._find(s, caller, owner, name), number)
                return v.number, v.state

        n, state = await self.run(lookup)
        live = self.router.endpoint(owner, name)
        lv = live.versions.get(n) if live else None
        if lv is None or lv.state in (STOPPED, FAILED):
            raise Conflict(f"Version {n} of {owner}/{name} is not running ({state}).")
        assert live is not None
        await self._retire(live, lv, "stopped by request", drain=True)
        return await self.run(self.version, caller, owner, name, str(n))

    def live_log(self, owner: str, name: str, number: int) -> LogStore | None:
        live = self.router.endpoint(owner, name)
        lv = live.versions.get(number) if live else None
        return self.logs.get(lv.id) if lv else None

    def version_state(self, owner: str, name: str, number: int) -> str:
        live = self.router.endpoint(owner, name)
        lv = live.versions.get(number) if live else None
        return lv.state if lv else STOPPED

    # -- the rollout ---------------------------------------------------------------------
    async def _rollout(self, ep: LiveEndpoint, lv: LiveVersion) -> None:
        logs = self.logs[lv.id]
        try:
            count = await self.run(self._replica_count, lv.id)
            if lv.state != DEPLOYING:  # stopped or deleted before it began
                return
            logs.append([f"[floyd] deploying {ep.owner}/{ep.name} v{lv.number}: {count} replica(s)"])
            lv.replicas = [Replica(index=i, port=0) for i in range(count)]
            await asyncio.wait_for(asyncio.gather(*(self._start_and_wait(ep, lv, r) for r in lv.replicas)),
                                   self.limits.ready_timeout)
        except (DeployFailed, FloydError, ExecutorError, asyncio.TimeoutError) as exc:
            if lv.state != DEPLOYING:  # stopped or deleted while it was starting
                return
            message = getattr(exc, "message", "") or (
                f"not ready within {self.limits.ready_timeout:g} s (c.BridgeApp.endpoint_ready_timeout)")
            await self._fail(ep, lv, message)
            return
        except Exception as exc:
            log.exception("Deploying %s/%s v%s failed", ep.owner, ep.name, lv.number)
            await self._fail(ep, lv, f"internal error while deploying: {exc}")
            return
        if lv.state != DEPLOYING:  # deleted or stopped meanwhile
            return
        await self.run(self._set_state, lv.id, READY, "", "ready_at")
        lv.state = READY  # from here on, unpinned requests go to this version
        logs.append([f"[floyd] v{lv.number} is ready and takes the endpoint's traffic"])
        for r in lv.replicas:
            self._spawn(self._supervise(ep, lv, r))
        newer = [v.number for v in ep.versions.values() if v.number > lv.number and v.state == READY]
        if newer:  # a later deploy got ready first: it serves, this one is not needed
            self._spawn(self._retire(ep, lv, f"replaced by v{max(newer)}", drain=True))
            return
        for old in list(ep.versions.values()):
            if old is not lv and old.number < lv.number and old.state == READY:
                self._spawn(self._retire(ep, old, f"replaced by v{lv.number}", drain=True))

    def _replica_count(self, version_id: int) -> int:
        with self.sessions() as s:
            v = s.get(EndpointVersion, version_id)
            assert v is not None
            return v.replicas

    async def _fail(self, ep: LiveEndpoint, lv: LiveVersion, message: str) -> None:
        logs = self.logs.get(lv.id)
        tail = logs.read()[-LOG_TAIL:] if logs else []
        serving = ep.latest()
        reason = f"{message}; " + (f"v{serving.number} keeps serving" if serving and serving is not lv
                                   else "no version was serving, so the endpoint still answers 503")
        await self.run(self._set_state, lv.id, FAILED, reason + ("\n" + "\n".join(tail) if tail else ""),
                       "stopped_at")
        lv.state = FAILED
        await self._stop_replicas(ep, lv)
        if logs is not None:
            logs.append([f"[floyd] v{lv.number} failed: {reason}"])
            logs.finish()

    async def _retire(self, ep: LiveEndpoint, lv: LiveVersion, reason: str, drain: bool) -> None:
        """Take no new requests, let the in-flight ones finish, then stop the replicas."""
        if lv.state in (STOPPED, FAILED):
            return
        was = lv.state
        lv.state = DRAINING
        await self.run(self._set_state, lv.id, DRAINING, reason, None)
        if was == DEPLOYING:
            for r in lv.replicas:
                r.state = "stopped"
        if drain and lv.stats.in_flight:
            try:
                await asyncio.wait_for(lv.drained.wait(), self.limits.drain_timeout)
            except asyncio.TimeoutError:
                log.warning("%s/%s v%s: %d request(s) still in flight after %g s; stopping anyway", ep.owner,
                            ep.name, lv.number, lv.stats.in_flight, self.limits.drain_timeout)
        await self._stop_replicas(ep, lv)
        lv.state = STOPPED
        await self.run(self._set_state, lv.id, STOPPED, reason, "stopped_at")
        logs = self.logs.pop(lv.id, None)
        if logs is not None and not logs.complete:
            logs.append([f"[floyd] v{lv.number} stopped: {reason}"])
            logs.finish()

    def _set_state(self, version_id: int, state: str, reason: str, stamp: str | None) -> None:
        with self.sessions.begin() as s:
            v = s.get(EndpointVersion, version_id)
            if v is None:
                return
            v.state, v.reason = state, reason
            if stamp:
                setattr(v, stamp, utcnow())
            live = self.router.by_version.get(version_id)
            if live is not None:
                v.stats = live.stats.to_json()

    # -- keys ----------------------------------------------------------------------------
    def create_key(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        only_keys(body, {"name", "expires_in_days"})
        with self.sessions.begin() as s:
            ep = self._find(s, caller, owner, name)
            key, secret = self.keys.create(s, ep.id, body.get("name"), caller.name, body.get("expires_in_days"))
            result = key_json(key) | {"key": secret}
        self.keys.reload()
        return result

    def list_keys(self, caller: Caller, owner: str, name: str) -> list[dict]:
        with self.sessions() as s:
            ep = self._find(s, caller, owner, name)
            return [key_json(k) for k in s.scalars(select(EndpointKey).where(EndpointKey.endpoint_id == ep.id)
                                                   .order_by(EndpointKey.id))]

    def revoke_key(self, caller: Caller, owner: str, name: str, key_id: str) -> dict:
        with self.sessions.begin() as s:
            ep = self._find(s, caller, owner, name)
            result = key_json(self.keys.revoke(s, ep.id, key_id))
        self.keys.reload()
        return result

    # -- metrics -------------------------------------------------------------------------
    def metrics(self, caller: Caller, owner: str, name: str, since: float) -> dict:
        with self.sessions() as s:
            ep = self._find(s, caller, owner, name)
            versions = list(s.scalars(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id)
                                      .order_by(EndpointVersion.number.desc()).limit(20)))
            out = []
            for v in versions:
                live = self.router.by_version.get(v.id)
                stats = live.stats if live else VersionStats(v.id, v.stats)
                series = [{"ts": m.ts, "requests": m.requests, "errors_4xx": m.errors_4xx, "errors_5xx": m.errors_5xx,
                           "p50_ms": m.p50_ms, "p95_ms": m.p95_ms, "p99_ms": m.p99_ms}
                          for m in s.scalars(select(EndpointMetric).where(EndpointMetric.version_id == v.id,
                                                                          EndpointMetric.ts >= since)
                                             .order_by(EndpointMetric.ts))]
                if live and live.stats.bucket.hist.total:
                    series.append({k: val for k, val in live.stats.bucket.row(v.id).items() if k != "version_id"})
                out.append({"number": v.number, "state": live.state if live else v.state, **stats.summary(),
                            "series": series})
            return {"endpoint": f"{ep.owner}/{ep.name}", "versions": out}

    async def flush_metrics(self) -> None:
        now = time.time()
        rows, dirty = [], []
        for lv in list(self.router.by_version.values()):
            rows.extend(lv.stats.take_rows(now))
            if lv.stats.dirty:
                lv.stats.dirty = False
                dirty.append((lv.id, lv.stats.to_json()))
        if rows or dirty:
            await self.run(self._write_metrics, rows, dirty)
        await self.run(self.keys.flush_usage)

    def _write_metrics(self, rows: list[dict], dirty: list[tuple[int, str]]) -> None:
        with self.sessions.begin() as s:
            if rows:
                s.execute(insert(EndpointMetric), rows)
            for version_id, stats in dirty:
                v = s.get(EndpointVersion, version_id)
                if v is not None:
                    v.stats = stats

    async def _flush_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(2)
            try:
                await self.flush_metrics()
            except Exception:
                log.exception("Writing endpoint metrics failed")

    # -- start-up and shutdown -----------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.root.mkdir(parents=True, exist_ok=True)
        await self.recover()
        self.router.loaded = True
        self._spawn(self._flush_loop())

    async def recover(self) -> None:
        """Route to the replicas a previous bridge left running; restart the missing ones;
        fail deploys that were cut short; stop what should no longer run."""
        found = {(f.version_id, f.index): f for f in await self.run(lambda: list(self.executor.find_replicas()))}
        plan = await self.run(self._load)
        wanted: set[tuple[int, int]] = set()
        for ep, versions in plan:
            live = self.router.add_endpoint(ep)
            for lv, rows, state in versions:
                self.router.add_version(live, lv)
                if state == READY:
                    self.logs[lv.id] = LogStore(self.log_path(live.owner, live.name, lv.number))
                    for row in rows:
                        wanted.add((lv.id, row.index))
                        self._spawn(self._readopt(live, lv, row, found.get((lv.id, row.index))))
                elif state == DEPLOYING:  # cut short: it never took traffic
                    lv.replicas = [Replica(index=row.index, port=row.port, handle=row.handle) for row in rows]
                    lv.state = FAILED
                    await self._stop_replicas(live, lv)
                    await self.run(self._set_state, lv.id, FAILED,
                                   "the bridge restarted during the deploy; deploy again", "stopped_at")
                elif state == DRAINING:  # its in-flight requests died with the old bridge's connections
                    lv.replicas = [Replica(index=row.index, port=row.port, handle=row.handle) for row in rows]
                    lv.state = READY
                    await self._retire(live, lv, "replaced by a newer version", drain=False)
        for key, f in found.items():  # containers of versions that should no longer run
            if key not in wanted:
                await self.run(self.executor.stop, f.handle, "", 1)
                await self.run(self.executor.cleanup, f.handle)

    def _load(self) -> list[tuple[LiveEndpoint, list[tuple[LiveVersion, list[EndpointReplica], str]]]]:
        out = []
        with self.sessions() as s:
            for ep in s.scalars(select(Endpoint)):
                versions = []
                for v in s.scalars(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id)):
                    rows = list(s.scalars(select(EndpointReplica).where(EndpointReplica.version_id == v.id)))
                    versions.append((self.live_version(v.id, v.number, v.state, v.stats), rows, v.state))
                out.append((LiveEndpoint(ep.id, ep.owner, ep.name, ep.public), versions))
            s.expunge_all()
        return out

    async def close(self) -> None:
        self._closing = True
        try:
            await self.flush_metrics()
        except Exception:
            log.exception("Writing endpoint metrics at shutdown failed")
        for logs in self.logs.values():
            if not logs.complete:
                logs._file.close()
        await self.router.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

