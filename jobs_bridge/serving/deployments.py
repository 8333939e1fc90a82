"""The DeploymentManager: endpoints, their immutable versions, keys and metrics, as the API calls them.

It owns the serving side's collaborators and wires them once: the ReplicaLifecycle (the
replicas' start, readiness, restarts, stop), the Rollout (when a version serves, fails,
drains, stops), the Recovery (taking endpoints back at start-up) and the UsageWriter (metrics
to the database). Rows (versions, replicas with their ports) are written before containers
start, so a restarted bridge routes to the same replicas.
"""

from __future__ import annotations

import asyncio
import builtins  # the method `list` hides the type in this class's annotations
import json
import logging
import shutil
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Float
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.endpoint_keys import KeyStore, key_json
from jobs_bridge.auth.identity import Caller
from jobs_bridge.auth.rules import check_access
from jobs_bridge.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from jobs_bridge.executors.base import Executor, ExecutorError
from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import Dataset, Endpoint, EndpointKey, EndpointReplica, EndpointVersion
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.serving import settings
from jobs_bridge.serving.common import ServingLimits, VersionLogs
from jobs_bridge.serving.follow import model_fields, roll_forward
from jobs_bridge.serving.records import endpoint_json, version_json
from jobs_bridge.serving.recovery import Recovery, live_version
from jobs_bridge.serving.replicas import ReplicaLifecycle
from jobs_bridge.serving.rollout import Rollout
from jobs_bridge.serving.router import DEPLOYING, DRAINING, FAILED, READY, STOPPED, LiveEndpoint, Router
from jobs_bridge.serving.scaler import Autoscaler
from jobs_bridge.serving.spec import VersionResolver, VersionSpec
from jobs_bridge.serving.splits import Splits
from jobs_bridge.serving.tasks import TaskRunner
from jobs_bridge.serving.usage import UsageWriter
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.validate import id_number, json_bool, only_keys

log = logging.getLogger("jobs_bridge.serving")
SETTINGS = ("autoscaling", "limits", "rollback_error_rate")


class DeploymentManager(LoggingConfigurable):
    """The API's view of endpoints; the replicas' life is delegated (see the module docstring).

    Its time settings reach the collaborators as one ServingLimits, read once at construction.
    """

    ready_timeout = Float(
        300.0, help="Seconds a new endpoint version's replicas may take to pass their readiness check (the first "
        "install of floyd_requirements.txt counts); after that the deploy fails and the previous version serves on.",
    ).tag(config=True)
    drain_timeout = Float(
        60.0, help="Seconds a replaced endpoint version may take to finish its in-flight requests before it stops.",
    ).tag(config=True)
    stop_grace = Float(
        10.0, help="Seconds between SIGTERM and SIGKILL when an endpoint replica stops.").tag(config=True)
    max_restart_delay = Float(
        30.0, help="Longest wait, in seconds, before restarting a crashed endpoint replica (the wait doubles "
        "from 1 s with each crash).",
    ).tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, resolver: VersionResolver,
                 gpus: GpuAllocator, executor: Executor, router: Router, keys: KeyStore, public_url: str,
                 service_prefix: str, secret: bytes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.resolver = resolver
        self.executor = executor
        self.router = router
        self.keys = keys
        self.public_url = public_url
        self.service_prefix = service_prefix
        self.secret = secret
        self.limits = ServingLimits(self.ready_timeout, self.drain_timeout, self.stop_grace, self.max_restart_delay)
        self.tasks = TaskRunner(64, "serving")
        self.logs: VersionLogs = {}
        self.replicas = ReplicaLifecycle(sessions, layout, resolver.jobs.datasets, executor, router.pool, gpus,
                                         self.limits, self.logs, self.tasks, public_url)
        self.rollout = Rollout(sessions, router, self.replicas, self.logs, self.tasks, self.limits)
        self.splits = Splits(sessions, router, self.rollout, self.logs, self.tasks, self._find)
        self.scaler = Autoscaler(router, self.replicas, gpus, self.tasks, self.logs, self.limits, self._auto_rollback,
                                 parent=self)
        self.defaults = self.scaler.defaults(resolver.max_replicas)
        self.recovery = Recovery(sessions, layout, executor, router, self.replicas, self.rollout, self.logs,
                                 self.tasks, secret, self.configure)
        self.usage = UsageWriter(sessions, router, keys, self.tasks)

    def configure(self, live: LiveEndpoint, row: Endpoint) -> LiveEndpoint:
        return settings.to_live(live, row, self.defaults)

    # -- lookups -------------------------------------------------------------------------
    def url(self, owner: str, name: str) -> str:
        return f"{self.public_url.rstrip('/')}{self.service_prefix.rstrip('/')}/endpoints/{owner}/{name}/"

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
        n = id_number(str(number).removeprefix("v"), "version", "use a number such as 3.")
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
        followed = s.get(Dataset, ep.follow_model_id) if ep.follow_model_id else None
        return endpoint_json(ep, self.url(ep.owner, ep.name), latest.number if latest else None,
                             [self._version_json(s, ep, v) for v in versions], keys,
                             f"{followed.owner}/{followed.name}@{ep.follow_alias}" if followed else None) | \
            settings.settings_json(ep, self.defaults)

    # -- endpoints -----------------------------------------------------------------------
    async def create(self, caller: Caller, body: dict) -> dict:
        def insert_row() -> tuple[dict, LiveEndpoint]:
            only_keys(body, {"name", "owner", "public", "description", *SETTINGS})
            name = check_name(body.get("name"), "endpoint name")
            owner = check_owner(body.get("owner", caller.name))
            if owner != caller.name and not caller.admin:
                raise Forbidden(f"You can create endpoints for yourself ({caller.name}), not for {owner}.")
            public, description = json_bool(body.get("public", False), "public"), body.get("description") or ""
            if not isinstance(description, str) or len(description) > 10_000:
                raise BadRequest("'description' must be a string of at most 10,000 characters.")
            with self.sessions.begin() as s:
                if s.scalar(select(Endpoint.id).where(Endpoint.owner == owner, Endpoint.name == name)):
                    raise Conflict(f"Endpoint {owner}/{name} exists already; deploy a new version to it.")
                ep = Endpoint(owner=owner, name=name, public=public, description=description, traffic="{}")
                settings.change(ep, body, self.defaults)
                s.add(ep)
                s.flush()
                return self._endpoint_json(s, ep), self.configure(LiveEndpoint(ep.id, owner, name, public), ep)

        result, live = await self.tasks.run(insert_row)
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
        def change() -> tuple[dict, Endpoint]:
            with self.sessions.begin() as s:
                ep = self._find(s, caller, owner, name)
                only_keys(body, {"public", "description", *SETTINGS})
                settings.change(ep, body, self.defaults)
                if "public" in body:
                    ep.public = json_bool(body["public"], "public")
                if "description" in body:
                    if not isinstance(body["description"], str) or len(body["description"]) > 10_000:
                        raise BadRequest("'description' must be a string of at most 10,000 characters.")
                    ep.description = body["description"]
                s.flush()
                s.expunge(ep)
                return self._endpoint_json(s, ep), ep

        result, row = await self.tasks.run(change)
        live = self.router.endpoint(owner, name)
        if live is not None:
            self.configure(live, row)
            self.router.changed()
        return result

    async def delete(self, caller: Caller, owner: str, name: str) -> None:
        def lookup() -> int:
            with self.sessions() as s:
                return self._find(s, caller, owner, name).id

        await self.tasks.run(lookup)
        live = self.router.endpoint(owner, name)
        if live is not None:
            await asyncio.gather(*(self.rollout.retire(live, v, "the endpoint was deleted", drain=True)
                                   for v in list(live.versions.values()) if v.state in (READY, DEPLOYING, DRAINING)))
            self.router.remove_endpoint(owner, name)

        def remove() -> None:
            with self.sessions.begin() as s:
                ep = self._find(s, caller, owner, name)
                s.delete(ep)
            shutil.rmtree(self.layout.endpoint_dir(owner, name), ignore_errors=True)
            self.keys.reload()

        await self.tasks.run(remove)

    # -- versions ------------------------------------------------------------------------
    def versions(self, caller: Caller, owner: str, name: str) -> builtins.list[dict]:
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
        version_id, number, gpus, result = await self.tasks.run(self._new_version, caller, owner, name, body)
        self._start(owner, name, version_id, number, gpus)
        return result

    def _start(self, owner: str, name: str, version_id: int, number: int, gpus: int) -> None:
        live = self.router.endpoint(owner, name)
        assert live is not None
        lv = live_version(self.secret, version_id, number, DEPLOYING, gpus=gpus)
        self.router.add_version(live, lv)
        self.logs[version_id] = LogStore(self.layout.endpoint_log(owner, name, number))
        self.tasks.spawn(self.rollout.deploy(live, lv))

    async def follow_alias(self, model_id: int, alias: str, number: int) -> builtins.list[dict]:
        """The alias moved to ``number``: every endpoint following it rolls out that model version."""
        started = await self.tasks.run(roll_forward, self.sessions, self.layout, model_id, alias, number)
        for st in started:
            self._start(st.owner, st.name, st.version_pk, st.number, st.gpus)
        return [{"endpoint": f"{st.owner}/{st.name}", "version": st.number} for st in started]

    def _new_version(self, caller: Caller, owner: str, name: str, body: dict) -> tuple[int, int, int, dict]:
        with self.sessions() as s:
            ep = self._find(s, caller, owner, name)
            spec = self.resolver.resolve(s, caller, ep.owner, body)
            if ep.min_replicas is not None and ep.max_replicas is not None and "replicas" not in body:
                # Autoscaled: start with the floor (one at least, to pass the readiness check).
                spec = replace(spec, replicas=min(max(1, ep.min_replicas), ep.max_replicas))
        try:
            image_id = self.executor.image_id(spec.env.image)
        except ExecutorError as exc:
            raise Unprocessable(exc.message) from None
        with self.sessions.begin() as s:
            ep = self._find(s, caller, owner, name)
            ep.last_number += 1
            follow = spec.model if spec.follow else None
            ep.follow_model_id, ep.follow_alias = (follow.model_id, follow.alias) if follow else (None, "")
            v = self._version_row(ep, spec, image_id, caller)
            s.add(v)
            s.flush()
            for i in range(spec.replicas):
                s.add(EndpointReplica(version_id=v.id, index=i))
            s.flush()
            self.layout.endpoint_version_dir(owner, name, v.number).mkdir(parents=True, exist_ok=True)
            return v.id, v.number, v.gpus, self._version_json(s, ep, v)

    @staticmethod
    def _version_row(ep: Endpoint, spec: VersionSpec, image_id: str, caller: Caller) -> EndpointVersion:
        return EndpointVersion(
            endpoint_id=ep.id, number=ep.last_number, state=DEPLOYING,
            reason=f"starting {spec.replicas} replica(s)", project=spec.project, snapshot=spec.snapshot,
            requirements_hash=spec.requirements_hash, entry=spec.entry, environment=spec.env.name,
            image=spec.env.image, image_id=image_id, cpus=spec.cpus, memory=spec.memory, gpus=spec.gpus,
            replicas=spec.replicas, inputs=json.dumps([i.record() | {"path": i.path} for i in spec.inputs]),
            health_path=spec.health_path, message=spec.message, created_by=caller.name, **model_fields(spec.model),
        )

    async def stop_version(self, caller: Caller, owner: str, name: str, number: str) -> dict:
        def lookup() -> tuple[int, str]:
            with self.sessions() as s:
                v = self._version(s, self._find(s, caller, owner, name), number)
                return v.number, v.state

        n, state = await self.tasks.run(lookup)
        live = self.router.endpoint(owner, name)
        lv = live.versions.get(n) if live else None
        if lv is None or lv.state in (STOPPED, FAILED):
            raise Conflict(f"Version {n} of {owner}/{name} is not running ({state}).")
        assert live is not None
        await self.rollout.retire(live, lv, "stopped by request", drain=True)
        return await self.tasks.run(self.version, caller, owner, name, str(n))

    def live_log(self, owner: str, name: str, number: int) -> LogStore | None:
        live = self.router.endpoint(owner, name)
        lv = live.versions.get(number) if live else None
        return self.logs.get(lv.id) if lv else None

    def version_state(self, owner: str, name: str, number: int) -> str:
        live = self.router.endpoint(owner, name)
        lv = live.versions.get(number) if live else None
        return lv.state if lv else STOPPED

    # -- keys and metrics ----------------------------------------------------------------
    def create_key(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        only_keys(body, {"name", "expires_in_days"})
        with self.sessions.begin() as s:
            ep = self._find(s, caller, owner, name)
            key, secret = self.keys.create(s, ep.id, body.get("name"), caller.name, body.get("expires_in_days"))
            result = key_json(key) | {"key": secret}
        self.keys.reload()
        return result

    def list_keys(self, caller: Caller, owner: str, name: str) -> builtins.list[dict]:
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

    def metrics(self, caller: Caller, owner: str, name: str, since: float) -> dict:
        with self.sessions() as s:
            return self.usage.report(s, self._find(s, caller, owner, name), since)

    # -- traffic -------------------------------------------------------------------------
    async def set_traffic(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        await self.splits.set_split(caller, owner, name, body)
        return await self.tasks.run(self.get, caller, owner, name)

    async def promote(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        await self.splits.promote(caller, owner, name, body)
        return await self.tasks.run(self.get, caller, owner, name)

    async def rollback(self, caller: Caller, owner: str, name: str, body: dict) -> dict:
        await self.splits.rollback(caller, owner, name, body)
        return await self.tasks.run(self.get, caller, owner, name)

    async def _auto_rollback(self, ep: LiveEndpoint, number: int, reason: str) -> None:
        log.warning("%s/%s v%s %s", ep.owner, ep.name, number, reason)
        await self.splits.leave(ep, number, reason)

    # -- start-up and shutdown -----------------------------------------------------------
    async def start(self) -> None:
        self.tasks.bind()
        self.layout.endpoints.mkdir(parents=True, exist_ok=True)
        await self.recovery.run()
        self.router.loaded = True
        self.tasks.spawn(self.usage.loop())
        self.tasks.spawn(self.scaler.loop())

    async def close(self) -> None:
        self.tasks.closing = True
        try:
            await self.usage.flush()
        except Exception:
            log.exception("Writing endpoint metrics at shutdown failed")
        for logs in self.logs.values():
            if not logs.complete:
                logs.close()
        await self.router.close()
        self.tasks.shutdown()
