"""Request metrics of endpoint versions, kept in memory on the request path.

Latencies go into a log-bucketed histogram (5 % wide buckets): recording is one ``log`` and a
dict increment, percentiles come from the counts, and histograms of time buckets merge. Every
``BUCKET_SECONDS`` the finished bucket becomes a row for the chart, written in a batch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

GROWTH = 1.05
LOG_GROWTH = math.log(GROWTH)
BUCKET_SECONDS = 10.0
CLASSES = ("2xx", "3xx", "4xx", "5xx")


class Histogram:
    """Counts of latencies (microseconds) in buckets ``[GROWTH**i, GROWTH**(i+1))``."""

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts or {})
        self.total = sum(self.counts.values())

    def add(self, seconds: float) -> None:
        micros = max(seconds * 1e6, 1.0)
        i = int(math.log(micros) / LOG_GROWTH)
        self.counts[i] = self.counts.get(i, 0) + 1
        self.total += 1

    def merge(self, other: Histogram) -> None:
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        self.total += other.total

    def percentile_ms(self, q: float) -> float | None:
        """The q-th percentile in milliseconds (the bucket's geometric middle), or None if empty."""
        if not self.total:
            return None
        rank = max(1, math.ceil(q / 100 * self.total))
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return round(GROWTH ** (i + 0.5) / 1000, 3)
        return None  # pragma: no cover

    def to_json(self) -> dict[str, int]:
        return {str(i): n for i, n in self.counts.items()}

    @classmethod
    def from_json(cls, data: dict) -> Histogram:
        return cls({int(i): int(n) for i, n in data.items()})


@dataclass
class Bucket:
    start: float
    hist: Histogram = field(default_factory=Histogram)
    classes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    replicas: int = 0  # the most ready replicas seen in the bucket

    def row(self, version_id: int) -> dict:
        return {"version_id": version_id, "ts": self.start, "requests": self.hist.total, "replicas": self.replicas,
                "errors_4xx": self.classes["4xx"], "errors_5xx": self.classes["5xx"],
                "p50_ms": self.hist.percentile_ms(50) or 0.0, "p95_ms": self.hist.percentile_ms(95) or 0.0,
                "p99_ms": self.hist.percentile_ms(99) or 0.0}


class VersionStats:
    """Counters of one version since it was deployed (survive bridge restarts via ``to_json``)."""

    def __init__(self, version_id: int, saved: str = "{}") -> None:
        data = json.loads(saved or "{}")
        self.version_id = version_id
        self.classes: dict[str, int] = {c: int(data.get("classes", {}).get(c, 0)) for c in CLASSES}
        self.failed = int(data.get("failed", 0))  # no answer from a replica: the proxy's own 502/503/504
        self.hist = Histogram.from_json(data.get("hist", {}))
        self.in_flight = 0  # through the bridge's own proxy
        self.outside = 0  # through the data plane (HAProxy), as last read
        self.bucket = Bucket(self._bucket_start(time.time()))
        self.finished: list[Bucket] = []
        self.dirty = False
        self.replicas = 0  # ready replicas now (the Autoscaler notes them)

    @staticmethod
    def _bucket_start(now: float) -> float:
        return now - now % BUCKET_SECONDS

    def record(self, status: int, seconds: float, now: float) -> None:
        if now >= self.bucket.start + BUCKET_SECONDS:
            self.roll(now)
        cls = f"{min(max(status // 100, 2), 5)}xx"
        self.classes[cls] += 1
        self.bucket.classes[cls] += 1
        self.hist.add(seconds)
        self.bucket.hist.add(seconds)
        self.dirty = True

    def note_replicas(self, count: int) -> None:
        now = time.time()
        if now >= self.bucket.start + BUCKET_SECONDS:
            self.roll(now)
        self.replicas = count
        self.bucket.replicas = max(self.bucket.replicas, count)

    def roll(self, now: float) -> None:
        # A bucket without requests is kept only when the replica count changed (for the chart).
        last = self.finished[-1].replicas if self.finished else self.replicas
        if self.bucket.hist.total or self.bucket.replicas != last:
            self.finished.append(self.bucket)
        self.bucket = Bucket(self._bucket_start(now), replicas=self.replicas)

    def take_rows(self, now: float) -> list[dict]:
        if now >= self.bucket.start + BUCKET_SECONDS:
            self.roll(now)
        rows = [b.row(self.version_id) for b in self.finished]
        self.finished = []
        return rows

    @property
    def requests(self) -> int:
        return sum(self.classes.values())

    def to_json(self) -> str:
        return json.dumps({"classes": self.classes, "failed": self.failed, "hist": self.hist.to_json()})

    def summary(self) -> dict:
        return {
            "requests": self.requests,
            "responses": dict(self.classes),
            "errors": self.classes["4xx"] + self.classes["5xx"],
            "latency_ms": {f"p{q}": self.hist.percentile_ms(q) for q in (50, 95, 99)},
            "in_flight": self.in_flight + self.outside,
            "unanswered": self.failed,
        }
