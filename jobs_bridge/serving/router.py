"""The routing table of live endpoints and the pooled upstream client.

Everything here runs on the event loop and is read on every request, so it is plain memory:
which versions of an endpoint are up, which replicas of each are ready, how many requests each
has in flight. The DeploymentManager changes it; the proxy handler reads it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float
from traitlets.config import LoggingConfigurable

from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.upstream import Pool

DEPLOYING, READY, FAILED, DRAINING, STOPPED = "deploying", "ready", "failed", "draining", "stopped"
VERSION_STATES = (DEPLOYING, READY, FAILED, DRAINING, STOPPED)


@dataclass(eq=False)
class Replica:
    index: int
    port: int
    host: str = "127.0.0.1"  # where the bridge connects
    listen: str = "127.0.0.1"  # where the replica binds
    handle: str = ""
    ready: bool = False  # passes its readiness check and takes traffic
    in_flight: int = 0
    restarts: int = 0
    crashes: int = 0  # in a row, for the restart back-off
    state: str = "starting"  # starting ready restarting stopped

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(eq=False)
class LiveVersion:
    id: int
    number: int
    state: str
    stats: VersionStats
    token: str = ""  # sent as X-Floyd-Proxy-Token: the replicas answer nobody else
    replicas: list[Replica] = field(default_factory=list)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    _turn: itertools.count = field(default_factory=itertools.count)

    def ready_replicas(self) -> list[Replica]:
        return [r for r in self.replicas if r.ready]

    def pick(self, exclude: Replica | None = None) -> Replica | None:
        """The ready replica with the fewest requests in flight; ties go round robin."""
        ready = [r for r in self.replicas if r.ready and r is not exclude]
        if not ready:
            return None
        turn = next(self._turn)
        return min(ready, key=lambda r: (r.in_flight, (r.index - turn) % len(self.replicas)))

    def begin(self, replica: Replica) -> None:
        replica.in_flight += 1
        self.stats.in_flight += 1
        self.drained.clear()

    def end(self, replica: Replica) -> None:
        replica.in_flight -= 1
        self.stats.in_flight -= 1
        if self.stats.in_flight == 0:
            self.drained.set()


@dataclass(eq=False)
class LiveEndpoint:
    id: int
    owner: str
    name: str
    public: bool
    versions: dict[int, LiveVersion] = field(default_factory=dict)

    def latest(self) -> LiveVersion | None:
        """The newest version that is ready and has a ready replica."""
        for number in sorted(self.versions, reverse=True):
            v = self.versions[number]
            if v.state == READY and any(r.ready for r in v.replicas):
                return v
        return None


class Router(LoggingConfigurable):
    """Live endpoints by name and versions by id, and the one upstream pool the proxy uses."""

    request_timeout = Float(
        300.0, help="Seconds a request to an endpoint may take (until the app's answer starts) before the proxy "
        "answers 504 (0 = no limit).",
    ).tag(config=True)
    connect_timeout = Float(
        5.0, help="Seconds the proxy (and a readiness check) may take to connect to a replica.").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoints: dict[tuple[str, str], LiveEndpoint] = {}
        self.by_version: dict[int, LiveVersion] = {}
        self.loaded = False  # True once the endpoints of the database are in the table
        # One pool of kept-alive connections for all replicas: no new TCP connection per request.
        self.pool = Pool(connect_timeout=self.connect_timeout)

    async def close(self) -> None:
        self.pool.close()

    def endpoint(self, owner: str, name: str) -> LiveEndpoint | None:
        return self.endpoints.get((owner, name))

    def add_endpoint(self, ep: LiveEndpoint) -> LiveEndpoint:
        return self.endpoints.setdefault((ep.owner, ep.name), ep)

    def remove_endpoint(self, owner: str, name: str) -> None:
        ep = self.endpoints.pop((owner, name), None)
        if ep is not None:
            for v in ep.versions.values():
                self.by_version.pop(v.id, None)

    def add_version(self, ep: LiveEndpoint, version: LiveVersion) -> None:
        ep.versions[version.number] = version
        self.by_version[version.id] = version

    def drop_version(self, ep: LiveEndpoint, version: LiveVersion) -> None:
        ep.versions.pop(version.number, None)
        self.by_version.pop(version.id, None)
