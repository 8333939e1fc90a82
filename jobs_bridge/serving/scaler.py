"""The Autoscaler: samples the router's in-flight counters, asks serving/autoscale.py what each
version needs, and adds or removes replicas; it also watches canaries' error rates.

A new replica joins the rotation only once its readiness check passes (ReplicaLifecycle); a
replica leaving it first stops taking requests, then waits for its in-flight ones to finish,
then stops, so a scale-down drops nothing. A request to a version at zero replicas wakes it at
once (``Router.wake``), without waiting for the next sample.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.errors import FloydError
from jobs_bridge.executors.base import ExecutorError
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.serving import autoscale, traffic
from jobs_bridge.serving.common import DeployFailed, ServingLimits, VersionLogs
from jobs_bridge.serving.replicas import ReplicaLifecycle
from jobs_bridge.serving.router import READY, LiveEndpoint, LiveVersion, Replica, Router
from jobs_bridge.serving.settings import Defaults
from jobs_bridge.serving.tasks import TaskRunner

log = logging.getLogger("jobs_bridge.serving")
GONE = ("stopping", "stopped")
Rollback = Callable[[LiveEndpoint, int, str], Coroutine[Any, Any, None]]


@dataclass
class Watch:
    """What the Autoscaler remembers of one version between samples."""

    history: autoscale.History
    active_at: float  # last time it had a request (in flight, held or finished)
    requests: int = 0
    canary_base: dict[tuple, tuple[int, int]] = field(default_factory=dict)  # split → (requests, 5xx) then


class Autoscaler(LoggingConfigurable):
    """``c.Autoscaler``: the defaults of the endpoints' autoscaling settings and how often it looks."""

    interval = Float(0.25, help="Seconds between two samples of the in-flight counters.").tag(config=True)
    metric_window = Float(2.0, help="Seconds over which in-flight samples are averaged.").tag(config=True)
    target_in_flight = Float(
        1.0, help="Default requests in flight per replica an autoscaled endpoint aims at.").tag(config=True)
    scale_up_window = Float(
        0.0, help="Default seconds the load must have wanted more replicas before they are added.").tag(config=True)
    scale_down_window = Float(
        30.0, help="Default seconds the load must have wanted fewer replicas before some are removed.",
    ).tag(config=True)
    idle_timeout = Float(
        300.0, help="Default seconds without requests after which a version with min_replicas 0 scales to zero.",
    ).tag(config=True)
    min_canary_requests = Integer(
        20, help="Requests a canary must have answered before its error rate can roll it back.").tag(config=True)

    def __init__(self, router: Router, replicas: ReplicaLifecycle, gpus: GpuAllocator, tasks: TaskRunner,
                 logs: VersionLogs, limits: ServingLimits, rollback: Rollback, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.router = router
        self.replicas = replicas
        self.gpus = gpus
        self.tasks = tasks
        self.logs = logs
        self.limits = limits
        self.rollback = rollback
        self.watches: dict[int, Watch] = {}
        self.rolling_back: set[int] = set()
        router.wake = self.wake

    def defaults(self, max_replicas: int) -> Defaults:
        return Defaults(self.target_in_flight, self.scale_up_window, self.scale_down_window, self.idle_timeout,
                        max_replicas)

    async def loop(self) -> None:
        while not self.tasks.closing:
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            free: list[int | None] = [None]  # free GPUs, asked once a tick and only when needed
            for ep in list(self.router.endpoints.values()):
                try:
                    self.watch_canary(ep)
                    for lv in list(ep.versions.values()):
                        if lv.state == READY:
                            lv.stats.note_replicas(sum(1 for r in lv.replicas if r.ready))
                            if ep.policy is not None:
                                self.sample(ep, lv, now, free)
                            elif not any(r.state not in GONE for r in lv.replicas):
                                # Autoscaling was turned off while the version was at zero.
                                self.add(ep, lv, "autoscaling is off; a version keeps one replica at least")
                except Exception:
                    log.exception("Autoscaling %s/%s failed", ep.owner, ep.name)

    def _free_gpus(self) -> int:
        return sum(1 for lease in self.gpus.leases() if lease["holder"] is None)

    def sample(self, ep: LiveEndpoint, lv: LiveVersion, now: float, free: list[int | None]) -> None:
        policy = ep.policy
        assert policy is not None
        w = self.watches.get(lv.id)
        if w is None:
            w = self.watches[lv.id] = Watch(autoscale.History(self.metric_window), now, lv.stats.requests)
        in_flight = lv.stats.in_flight + lv.stats.outside + lv.waiting
        if in_flight or lv.stats.requests != w.requests:
            w.active_at, w.requests = now, lv.stats.requests
        keep = max(policy.up_window, policy.down_window) + self.interval
        w.history.add(now, in_flight, keep)
        current = [r for r in lv.replicas if r.state not in GONE]
        headroom = None
        if lv.gpus:
            if free[0] is None:
                free[0] = self._free_gpus()
            headroom = (free[0] or 0) // lv.gpus
        d = autoscale.decide(policy, list(w.history.averages), now, len(current), now - w.active_at, headroom)
        lv.capped = (f"wants {d.wanted} replicas, but the free GPUs allow {d.replicas}" if d.capped else "")
        for _ in range(d.replicas - len(current)):
            self.add(ep, lv, "load")
        if d.replicas < len(current):
            # Starting ones first (they serve nobody yet), then the newest.
            for r in sorted(current, key=lambda r: (r.ready, -r.index))[:len(current) - d.replicas]:
                self.tasks.spawn(self.remove(ep, lv, r))

    def wake(self, ep: LiveEndpoint, lv: LiveVersion) -> None:
        """A request waits at zero replicas: start one now unless one is starting already."""
        if not any(r.state not in GONE for r in lv.replicas):
            self.add(ep, lv, "a request arrived at zero replicas")

    def add(self, ep: LiveEndpoint, lv: LiveVersion, why: str) -> None:
        index = max((r.index for r in lv.replicas), default=-1) + 1
        r = Replica(index=index, port=0)
        cold = not any(x.state not in GONE for x in lv.replicas)
        lv.replicas.append(r)
        self.tasks.spawn(self._start(ep, lv, r, cold, why))

    async def _start(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica, cold: bool, why: str) -> None:
        started = time.monotonic()
        self._log(lv, f"[floyd] autoscaler: adding r{r.index} ({why})")
        try:
            await self.tasks.run(self.replicas.add_row, lv.id, r.index)
            await asyncio.wait_for(self.replicas.start_and_wait(ep, lv, r), self.limits.ready_timeout)
        except (DeployFailed, FloydError, ExecutorError, asyncio.TimeoutError) as exc:
            self._log(lv, f"[floyd] autoscaler: r{r.index} did not start: {getattr(exc, 'message', '') or 'timeout'}")
            await self.replicas.stop_one(ep, lv, r)
            return
        if lv.state != READY or r.state in GONE:
            await self.replicas.stop_one(ep, lv, r)
            return
        took = time.monotonic() - started
        if cold:
            lv.cold_start_s = round(took, 3)
        self._log(lv, f"[floyd] autoscaler: r{r.index} ready in {took:.2f} s"
                      + (" (cold start from zero replicas)" if cold else ""))
        self.tasks.spawn(self.replicas.supervise(ep, lv, r))

    async def remove(self, ep: LiveEndpoint, lv: LiveVersion, r: Replica) -> None:
        """Out of the rotation first, then wait for its requests, then stop: nothing is dropped."""
        if r.state in GONE:
            return
        r.ready = False
        r.state = "stopping"
        deadline = time.monotonic() + self.limits.drain_timeout
        while (r.in_flight or r.outside) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self.replicas.stop_one(ep, lv, r)
        left = sum(1 for x in lv.replicas if x.state not in GONE)
        self._log(lv, f"[floyd] autoscaler: r{r.index} removed ({left} replica(s) left)")

    def watch_canary(self, ep: LiveEndpoint) -> None:
        """Roll the split's canary back when its 5xx share since the split was set passes the threshold."""
        number = traffic.canary(ep.split)
        lv = ep.versions.get(number) if number is not None else None
        if lv is None or ep.rollback_error_rate is None or lv.id in self.rolling_back:
            return
        w = self.watches.setdefault(lv.id, Watch(autoscale.History(self.metric_window), time.monotonic(),
                                                 lv.stats.requests))
        key = tuple(sorted(ep.split.items()))
        base = w.canary_base.setdefault(key, ep.split_base.get(lv.number, (lv.stats.requests, lv.stats.classes["5xx"])))
        requests, errors = lv.stats.requests - base[0], lv.stats.classes["5xx"] - base[1]
        rate = traffic.error_rate(requests, errors)
        if requests >= self.min_canary_requests and rate > ep.rollback_error_rate:
            self.rolling_back.add(lv.id)
            reason = (f"rolled back by itself: {errors} of {requests} requests failed ({rate:.0%}, over the "
                      f"threshold of {ep.rollback_error_rate:.0%})")
            self.tasks.spawn(self.rollback(ep, lv.number, reason))

    def _log(self, lv: LiveVersion, line: str) -> None:
        logs = self.logs.get(lv.id)
        if logs is not None and not logs.complete:
            logs.append([line])
