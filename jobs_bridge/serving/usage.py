"""Request metrics of endpoints: written to the database every few seconds, read back for charts.

The proxy counts in memory (VersionStats, on the request path); this moves finished time
buckets into ``endpoint_metrics`` rows, the counters into each version row (they survive a
restart), and the API keys' last use, off the loop in one batch.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.auth.endpoint_keys import KeyStore
from jobs_bridge.orm import Endpoint, EndpointMetric, EndpointVersion
from jobs_bridge.serving.metrics import VersionStats
from jobs_bridge.serving.router import Router
from jobs_bridge.serving.tasks import TaskRunner

log = logging.getLogger("jobs_bridge.serving")
FLUSH_SECONDS = 2.0


class UsageWriter:
    def __init__(self, sessions: sessionmaker[Session], router: Router, keys: KeyStore, tasks: TaskRunner) -> None:
        self.sessions = sessions
        self.router = router
        self.keys = keys
        self.tasks = tasks

    def report(self, s: Session, ep: Endpoint, since: float) -> dict:
        """The endpoint's newest 20 versions: totals, and a series of buckets since ``since`` (epoch s)."""
        versions = list(s.scalars(select(EndpointVersion).where(EndpointVersion.endpoint_id == ep.id)
                                  .order_by(EndpointVersion.number.desc()).limit(20)))
        out = []
        for v in versions:
            live = self.router.by_version.get(v.id)
            stats = live.stats if live else VersionStats(v.id, v.stats)
            series = [{"ts": m.ts, "requests": m.requests, "errors_4xx": m.errors_4xx, "errors_5xx": m.errors_5xx,
                       "p50_ms": m.p50_ms, "p95_ms": m.p95_ms, "p99_ms": m.p99_ms, "replicas": m.replicas}
                      for m in s.scalars(select(EndpointMetric).where(EndpointMetric.version_id == v.id,
                                                                      EndpointMetric.ts >= since)
                                         .order_by(EndpointMetric.ts))]
            if live and live.stats.bucket.hist.total:
                series.append({k: val for k, val in live.stats.bucket.row(v.id).items() if k != "version_id"})
            out.append({"number": v.number, "state": live.state if live else v.state, **stats.summary(),
                        "replicas": live.stats.replicas if live else 0, "series": series})
        return {"endpoint": f"{ep.owner}/{ep.name}", "versions": out}

    async def flush(self) -> None:
        now = time.time()
        rows, dirty = [], []
        for lv in list(self.router.by_version.values()):
            rows.extend(lv.stats.take_rows(now))
            if lv.stats.dirty:
                lv.stats.dirty = False
                dirty.append((lv.id, lv.stats.to_json()))
        if rows or dirty:
            await self.tasks.run(self._write, rows, dirty)
        await self.tasks.run(self.keys.flush_usage)

    def _write(self, rows: list[dict], dirty: list[tuple[int, str]]) -> None:
        with self.sessions.begin() as s:
            if rows:
                s.execute(insert(EndpointMetric), rows)
            for version_id, stats in dirty:
                v = s.get(EndpointVersion, version_id)
                if v is not None:
                    v.stats = stats

    async def loop(self) -> None:
        """Flush every FLUSH_SECONDS until the bridge closes."""
        while not self.tasks.closing:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:
                log.exception("Writing endpoint metrics failed")
