"""The routing table of live endpoints and the pooled upstream client.

Everything here runs on the event loop and is read on every request, so it is plain memory:
which versions of an endpoint are up, which replicas of each are ready, how many requests each
has in flight. The DeploymentManager changes it; the proxy handler reads it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from jobs_bridge.serving.autoscale import Policy
from jobs_bridge.serving.edge import EdgeLimits, RateLimiter
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
    node: str = ""  # the machine it runs on, where the runtime has several (a swarm node's name)
    handle: str = ""
    ready: bool = False  # passes its readiness check and takes traffic
    in_flight: int = 0  # through the bridge's own proxy
    outside: int = 0  # through the data plane (HAProxy), as last read
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
    gpus: int = 0  # per replica
    warm: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever a replica gets ready
    waiting: int = 0  # requests held while the version starts from zero replicas
    cold_start_s: float | None = None  # how long the last start from zero took
    capped: str = ""  # why the autoscaler could not add the replicas it wanted (free GPUs)

    def replica_ready(self) -> None:
        self.warm.set()

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
    policy: Policy | None = None  # autoscaling; None: each version keeps its deployed replicas
    edge: EdgeLimits = field(default_factory=EdgeLimits)
    rates: RateLimiter = field(default_factory=RateLimiter)
    split: dict[int, int] = field(default_factory=dict)  # version → percent of unpinned traffic
    # each split version's (requests, 5xx) when the split was set: a canary's error rate counts from there
    split_base: dict[int, tuple[int, int]] = field(default_factory=dict)
    rollback_error_rate: float | None = None  # a canary with a larger 5xx share rolls back

    def can_answer(self, v: LiveVersion) -> bool:
        """Ready with a ready replica, or able to start one for the request (scale to zero)."""
        if v.state != READY:
            return False
        return any(r.ready for r in v.replicas) or (self.policy is not None and self.policy.min_replicas == 0)

    def latest(self) -> LiveVersion | None:
        """The newest version that can answer."""
        for number in sorted(self.versions, reverse=True):
            if self.can_answer(self.versions[number]):
                return self.versions[number]
        return None

    def weights(self) -> list[tuple[int, int]]:
        """The split's (version, percent) of the versions that can answer."""
        return [(n, w) for n, w in self.split.items() if n in self.versions and self.can_answer(self.versions[n])]


class Router(LoggingConfigurable):
    """Live endpoints by name and versions by id, and the one upstream pool the proxy uses."""

    request_timeout = Float(
        300.0, help="Seconds a request to an endpoint may take (until the app's answer starts) before the proxy "
        "answers 504 (0 = no limit).",
    ).tag(config=True)
    connect_timeout = Float(
        5.0, help="Seconds the proxy (and a readiness check) may take to connect to a replica.").tag(config=True)
    cold_queue_limit = Integer(
        100, help="Requests an endpoint version at zero replicas holds while one starts; more get 503.",
    ).tag(config=True)
    cold_start_timeout = Float(
        120.0, help="Seconds a request held at zero replicas waits for a replica to get ready before it gets 503.",
    ).tag(config=True)
    sticky_header = Unicode(
        "X-Floyd-Client", help="Request header whose value keeps a caller on one version of a traffic split.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoints: dict[tuple[str, str], LiveEndpoint] = {}
        self.by_version: dict[int, LiveVersion] = {}
        self.loaded = False  # True once the endpoints of the database are in the table
        # One pool of kept-alive connections for all replicas: no new TCP connection per request.
        self.pool = Pool(connect_timeout=self.connect_timeout)
        # Asked to start a replica of a version at zero replicas (the Autoscaler sets it).
        self.wake: Callable[[LiveEndpoint, LiveVersion], None] = lambda ep, lv: None
        # Told after a change of an endpoint's settings, visibility or split (the data plane
        # takes it into HAProxy's tables before the API answers).
        self.changed: Callable[[], None] = lambda: None

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
