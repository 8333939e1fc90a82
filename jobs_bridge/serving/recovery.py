"""Taking endpoints back at start-up: replicas are not children of the bridge.

A bridge that stops (or crashes) leaves its replicas serving. The next one routes to those
still running, restarts the missing ones, fails deploys that were cut short (they never took
traffic) and stops what should no longer run.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.executors.base import Executor, FoundReplica
from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.orm import Endpoint, EndpointReplica, EndpointVersion
from jobs_bridge.serving.common import VersionLogs, proxy_token
from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.replicas import ReplicaLifecycle
from jobs_bridge.serving.rollout import Rollout
from jobs_bridge.serving.router import (
    DEPLOYING,
    DRAINING,
    FAILED,
    READY,
    LiveEndpoint,
    LiveVersion,
    Replica,
    Router,
)
from jobs_bridge.serving.tasks import TaskRunner
from jobs_bridge.storage.paths import StorageLayout

# what the database says: each endpoint with its versions, their replica rows and stored state
Plan = list[tuple[LiveEndpoint, list[tuple[LiveVersion, list[EndpointReplica], str]]]]


def live_version(secret: bytes, version_id: int, number: int, state: str, stats: str = "{}",
                 gpus: int = 0) -> LiveVersion:
    """A version as the router keeps it, with the token its replicas expect."""
    return LiveVersion(version_id, number, state, VersionStats(version_id, stats), token=proxy_token(secret, version_id),
                       gpus=gpus)


class Recovery:
    """Fills the router from the database and the runtime's labelled replicas (``run`` once)."""

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, executor: Executor, router: Router,
                 replicas: ReplicaLifecycle, rollout: Rollout, logs: VersionLogs, tasks: TaskRunner,
                 secret: bytes, configure: Callable[[LiveEndpoint, Endpoint], LiveEndpoint]) -> None:
        self.sessions = sessions
        self.layout = layout
        self.executor = executor
        self.router = router
        self.replicas = replicas
        self.rollout = rollout
        self.logs = logs
        self.tasks = tasks
        self.secret = secret
        self.configure = configure  # the endpoint row's serving settings onto the router's endpoint

    async def run(self) -> None:
        """Route to the replicas a previous bridge left running; restart the missing ones;
        fail deploys that were cut short; stop what should no longer run."""
        found = {(f.version_id, f.index): f for f in await self.tasks.run(lambda: list(self.executor.find_replicas()))}
        wanted: set[tuple[int, int]] = set()
        for ep, versions in await self.tasks.run(self._load):
            live = self.router.add_endpoint(ep)
            for lv, rows, state in versions:
                self.router.add_version(live, lv)
                if state == READY:
                    wanted.update((lv.id, row.index) for row in rows)
                    self._readopt(live, lv, rows, found)
                elif state in (DEPLOYING, DRAINING):
                    await self._end(live, lv, rows, state)
        for key, f in found.items():  # containers of versions that should no longer run
            if key not in wanted:
                await self.tasks.run(self.executor.stop, f.handle, "", 1)
                await self.tasks.run(self.executor.cleanup, f.handle)

    def _readopt(self, ep: LiveEndpoint, lv: LiveVersion, rows: list[EndpointReplica],
                 found: dict[tuple[int, int], FoundReplica]) -> None:
        self.logs[lv.id] = LogStore(self.layout.endpoint_log(ep.owner, ep.name, lv.number))
        for row in rows:
            self.tasks.spawn(self.replicas.readopt(ep, lv, row, found.get((lv.id, row.index))))

    async def _end(self, ep: LiveEndpoint, lv: LiveVersion, rows: list[EndpointReplica], state: str) -> None:
        lv.replicas = [Replica(index=row.index, port=row.port, handle=row.handle) for row in rows]
        if state == DEPLOYING:  # cut short: it never took traffic
            lv.state = FAILED
            await self.replicas.stop_all(ep, lv)
            await self.tasks.run(self.rollout.set_state, lv.id, FAILED,
                                 "the bridge restarted during the deploy; deploy again", "stopped_at")
        else:  # draining: its in-flight requests died with the old bridge's connections
            lv.state = READY
            await self.rollout.retire(ep, lv, "replaced by a newer version", drain=False)

    def _load(self) -> Plan:
        out: Plan = []
        with self.sessions() as s:
            for ep in s.scalars(select(Endpoint)):
                versions = []
                for v in s.scalars(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id)):
                    rows = list(s.scalars(select(EndpointReplica).where(EndpointReplica.version_id == v.id)))
                    versions.append((live_version(self.secret, v.id, v.number, v.state, v.stats, v.gpus), rows,
                                     v.state))
                out.append((self.configure(LiveEndpoint(ep.id, ep.owner, ep.name, ep.public), ep), versions))
            s.expunge_all()
        return out
