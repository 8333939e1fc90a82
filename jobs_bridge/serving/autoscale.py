"""The autoscaling decision, pure: in-flight samples and a policy in, a replica count out.

Cortex's ``target_replica_concurrency`` and Kubernetes' stabilisation windows: each sample asks
for ``ceil(in_flight / target)`` replicas; a scale-up takes the *lowest* wish of the up window
(the load held that long), a scale-down the *highest* wish of the down window (the load stayed
low that long), so one burst or one lull does not flap the count. Nothing here touches the
clock, the router or a replica: the Autoscaler (serving/scaler.py) samples and acts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """One endpoint's autoscaling settings (seconds for the windows and the idle time)."""

    min_replicas: int
    max_replicas: int
    target_in_flight: float
    up_window: float
    down_window: float
    idle_timeout: float  # with min_replicas 0: idle this long, the version scales to zero


@dataclass(frozen=True)
class Decision:
    replicas: int
    capped: bool = False  # more were wanted than the free GPUs allow
    wanted: int = 0


class History:
    """In-flight readings of one version (``(time, in_flight)``), and their moving averages.

    ``average`` smooths the instantaneous readings over ``metric_window`` seconds; the averages
    are kept as long as the longest stabilisation window needs them.
    """

    def __init__(self, metric_window: float) -> None:
        self.metric_window = metric_window
        self.readings: deque[tuple[float, float]] = deque()
        self.averages: deque[tuple[float, float]] = deque()

    def add(self, now: float, in_flight: float, keep: float) -> float:
        self.readings.append((now, in_flight))
        while self.readings and self.readings[0][0] < now - self.metric_window:
            self.readings.popleft()
        avg = sum(v for _, v in self.readings) / len(self.readings)
        self.averages.append((now, avg))
        while self.averages and self.averages[0][0] < now - keep:
            self.averages.popleft()
        return avg


def wish(in_flight: float, target: float) -> int:
    """Replicas that keep ``in_flight`` requests at ``target`` per replica (1 as soon as any)."""
    if in_flight <= 0:
        return 0
    return max(1, math.ceil(in_flight / target - 1e-9))


def decide(policy: Policy, averages: list[tuple[float, float]], now: float, current: int, idle_for: float,
           headroom: int | None = None) -> Decision:
    """The replica count for a version that has ``current`` (starting ones included).

    ``averages``: ``(time, average in-flight)``, oldest first, not empty. ``idle_for``: seconds
    since the version last had a request. ``headroom``: how many more replicas the free GPUs
    allow (None: not a GPU version).
    """
    latest = averages[-1][1]
    up = min(wish(v, policy.target_in_flight) for t, v in averages if t >= now - policy.up_window - 1e-9)
    down = max(wish(v, policy.target_in_flight) for t, v in averages if t >= now - policy.down_window - 1e-9)
    if current == 0 and latest > 0:
        up = max(up, 1)  # a request waits at zero replicas: start one now, whatever the window
    want = up if up > current else down if down < current else current
    floor = policy.min_replicas
    if floor == 0 and (idle_for < policy.idle_timeout or latest > 0):
        floor = 1 if current > 0 or latest > 0 else 0
    want = max(floor, min(policy.max_replicas, want))
    if headroom is not None and want > current + headroom:
        return Decision(current + max(headroom, 0), True, want)
    return Decision(want, False, want)
