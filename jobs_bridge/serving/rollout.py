"""The rollout: when a version takes the endpoint's traffic, when it fails, when it drains and stops.

A deploy starts every replica of the new version and waits until each passes its readiness
check; only then does the version become READY, which is where unpinned traffic goes from that
instant. The version it replaces drains (its in-flight requests finish; it takes no new ones)
and stops. A version that never gets ready fails with the tail of its log, and the previous one
never stopped serving. The replicas themselves are the ReplicaLifecycle's business.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.errors import FloydError
from jobs_bridge.executors.base import ExecutorError
from jobs_bridge.orm import EndpointVersion
from jobs_bridge.serving.common import DeployFailed, ServingLimits, VersionLogs
from jobs_bridge.serving.replicas import ReplicaLifecycle
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
from jobs_bridge.serving.tasks import TaskRunner
from jobs_bridge.timeutil import utcnow

log = logging.getLogger("jobs_bridge.serving")
LOG_TAIL = 40  # lines of the log a failed version keeps in its reason


class Rollout:
    """Moves versions through deploying → ready → draining → stopped (or failed).

    ``deploy`` is the whole life of one new version's start; ``retire`` and ``fail`` end a
    version. Each keeps the router's LiveVersion state, the database row and the version's log
    in step; ``set_state`` is the one writer of a version row's state.
    """

    def __init__(self, sessions: sessionmaker[Session], router: Router, replicas: ReplicaLifecycle,
                 logs: VersionLogs, tasks: TaskRunner, limits: ServingLimits) -> None:
        self.sessions = sessions
        self.router = router
        self.replicas = replicas
        self.logs = logs
        self.tasks = tasks
        self.limits = limits

    async def deploy(self, ep: LiveEndpoint, lv: LiveVersion) -> None:
        """Start the replicas of ``lv``; once all are ready it serves and the older versions retire."""
        logs = self.logs[lv.id]
        try:
            count = await self.tasks.run(self._replica_count, lv.id)
            if lv.state != DEPLOYING:  # stopped or deleted before it began
                return
            logs.append([f"[floyd] deploying {ep.owner}/{ep.name} v{lv.number}: {count} replica(s)"])
            lv.replicas = [Replica(index=i, port=0) for i in range(count)]
            await asyncio.wait_for(asyncio.gather(*(self.replicas.start_and_wait(ep, lv, r) for r in lv.replicas)),
                                   self.limits.ready_timeout)
        except (DeployFailed, FloydError, ExecutorError, asyncio.TimeoutError) as exc:
            if lv.state != DEPLOYING:  # stopped or deleted while it was starting
                return
            message = getattr(exc, "message", "") or (
                f"not ready within {self.limits.ready_timeout:g} s (c.DeploymentManager.ready_timeout)")
            await self.fail(ep, lv, message)
            return
        except Exception as exc:
            log.exception("Deploying %s/%s v%s failed", ep.owner, ep.name, lv.number)
            await self.fail(ep, lv, f"internal error while deploying: {exc}")
            return
        if lv.state != DEPLOYING:  # deleted or stopped meanwhile
            return
        await self.switch(ep, lv)

    async def switch(self, ep: LiveEndpoint, lv: LiveVersion) -> None:
        """``lv`` is ready: it takes the traffic, unless a later deploy got ready first."""
        await self.tasks.run(self.set_state, lv.id, READY, "", "ready_at")
        lv.state = READY  # from here on, unpinned requests go to this version
        self.logs[lv.id].append([f"[floyd] v{lv.number} is ready and takes the endpoint's traffic"])
        for r in lv.replicas:
            self.tasks.spawn(self.replicas.supervise(ep, lv, r))
        if ep.split:  # the split decides who serves; this version waits for a share of it
            self.logs[lv.id].append([f"[floyd] v{lv.number} takes no unpinned traffic until the split gives it a "
                                     f"share (`floyd endpoint traffic {ep.name} v{lv.number}=10 …` or `promote`)"])
            return
        newer = [v.number for v in ep.versions.values() if v.number > lv.number and v.state == READY]
        if newer:  # a later deploy got ready first: it serves, this one is not needed
            self.tasks.spawn(self.retire(ep, lv, f"replaced by v{max(newer)}", drain=True))
            return
        for old in list(ep.versions.values()):
            if old is not lv and old.number < lv.number and old.state == READY:
                self.tasks.spawn(self.retire(ep, old, f"replaced by v{lv.number}", drain=True))

    def _replica_count(self, version_id: int) -> int:
        with self.sessions() as s:
            v = s.get(EndpointVersion, version_id)
            assert v is not None
            return v.replicas

    async def fail(self, ep: LiveEndpoint, lv: LiveVersion, message: str) -> None:
        """``lv`` never got ready: stop what started, keep the log's tail in the row's reason."""
        logs = self.logs.get(lv.id)
        tail = logs.read()[-LOG_TAIL:] if logs else []
        serving = ep.latest()
        reason = f"{message}; " + (f"v{serving.number} keeps serving" if serving and serving is not lv
                                   else "no version was serving, so the endpoint still answers 503")
        await self.tasks.run(self.set_state, lv.id, FAILED, reason + ("\n" + "\n".join(tail) if tail else ""),
                             "stopped_at")
        lv.state = FAILED
        await self.replicas.stop_all(ep, lv)
        if logs is not None:
            logs.append([f"[floyd] v{lv.number} failed: {reason}"])
            logs.finish()

    async def retire(self, ep: LiveEndpoint, lv: LiveVersion, reason: str, drain: bool) -> None:
        """Take no new requests, let the in-flight ones finish (``drain``), then stop the replicas."""
        if lv.state in (STOPPED, FAILED):
            return
        was = lv.state
        lv.state = DRAINING
        await self.tasks.run(self.set_state, lv.id, DRAINING, reason, None)
        if was == DEPLOYING:
            for r in lv.replicas:
                r.state = "stopped"
        if drain and lv.stats.in_flight:
            try:
                await asyncio.wait_for(lv.drained.wait(), self.limits.drain_timeout)
            except asyncio.TimeoutError:
                log.warning("%s/%s v%s: %d request(s) still in flight after %g s; stopping anyway", ep.owner,
                            ep.name, lv.number, lv.stats.in_flight, self.limits.drain_timeout)
        await self.replicas.stop_all(ep, lv)
        lv.state = STOPPED
        await self.tasks.run(self.set_state, lv.id, STOPPED, reason, "stopped_at")
        logs = self.logs.pop(lv.id, None)
        if logs is not None and not logs.complete:
            logs.append([f"[floyd] v{lv.number} stopped: {reason}"])
            logs.finish()

    def set_state(self, version_id: int, state: str, reason: str, stamp: str | None) -> None:
        """Write a version row's state and reason (and ``stamp``, a time column), with its stats."""
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
