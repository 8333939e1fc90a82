"""Load benchmark: does the platform hold when many users use it at once?

Starts a real platform the way ``make up`` does (tests.support.platform, Docker executor,
``c.JobQueue.max_running = 4``, ``max_running_per_user = 2``), deploys a trivial ASGI app.py
as an endpoint with an API key, times an API GET at idle, then at once: 50 users (created
through the Hub) upload their code and submit 100 one-second jobs in all (a fifth of the users
submit most of them), 20 dataset uploads go up through the client library, and the endpoint
gets 200 requests/s for 60 s through the public URL; the API GET is timed all along, until the
last job has ended (tests/support/load.py does the traffic). Measured:

  load_errors                 failed requests of every kind (non-2xx, exceptions, jobs that did
                              not succeed)  vs  the same count at idle (goal: 0)
  api_get_p99_under_load      p99 of GET /api/v1/jobs?limit=20 during the load  vs  its p99 at
                              idle once the load has ended, same run (goal: ratio < 5), timed from
                              a process of its own (tests/support/loadgen.py ApartSampler). The
                              baseline is taken after the load because the answer is then the same
                              (the user's 20 newest jobs; before the load the list is empty and
                              costs the bridge ~1.4 ms less); the idle p99 before the load and the
                              ratio to it are beside it, with the p99 of the first 10 s (the burst
                              of creates, uploads and submits) and of the rest
  fair_share_violations       jobs the queue picked for a user who held more slots than another
                              user with a job waiting, replayed from the records' created_at /
                              picked_at / finished_at (tests/support/fairshare.py); limits
                              broken beside it (goal: 0)
  endpoint_throughput         requests/s answered 200  vs  the target rate; errors beside it
  uploads_completed           dataset uploads that ended in a version  vs  started
  jobs_succeeded              jobs that succeeded  vs  submitted

``--quick``: 10 users, 20 jobs, 4 uploads, 50 requests/s for 10 s.
One JSON object per measurement on stdout; logs on stderr.

    .venv/bin/python benchmarks/load.py [--quick] [--keep DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import docker
import requests
from common import build_image, cli, log, median, num, run_then_cleanup
from common import emit as emit_record

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.load import FULL, QUICK, LoadResult, LoadRun  # noqa: E402
from tests.support.loadgen import percentile  # noqa: E402
from tests.support.platform import Platform  # noqa: E402

BURST_S = 10.0  # the p99 is also given for the first BURST_S seconds of the load and for the rest


class Bench:
    def __init__(self, base: Path, quick: bool) -> None:
        self.base = base
        self.profile = QUICK if quick else FULL
        self.mode = "quick" if quick else "full"
        self.platform: Platform | None = None

    def run(self) -> None:
        log(build_image())
        self.platform = Platform.create(self.base / "platform", bridge_config=self.profile.bridge_config())
        self.platform.start()
        work = self.base / "load"
        work.mkdir()
        log(f"load: {self.profile}")
        result = LoadRun(self.platform, self.profile, work).run()
        log(f"load phase {result.load_seconds:.1f}s; job states {result.states}; errors {dict(result.errors.counts)}")
        report(result, self.mode)

    def cleanup(self) -> None:
        if self.platform is None:
            return
        log(f"stopping the platform at {self.platform.url}")
        self.platform.stop()
        try:  # jobs the bridge did not get to remove (an interrupted run)
            client = docker.from_env(timeout=60)
            for c in client.containers.list(all=True, filters={"label": f"org.floyd.instance={self.platform.instance}"}):
                c.remove(force=True)
        except (docker.errors.APIError, requests.RequestException) as exc:
            log(f"could not remove leftover containers: {exc}")


def report(r: LoadResult, mode: str) -> None:
    """The JSON lines of one load run."""
    prof = r.profile
    common: dict[str, Any] = {"mode": mode, "users": prof.users, "jobs": r.submitted, "uploads": prof.uploads,
              "endpoint_rate": prof.rate, "endpoint_seconds": prof.seconds, "load_seconds": round(r.load_seconds, 1)}
    kinds = dict(r.errors.counts.most_common(10))
    emit_record("load_errors", r.errors.total, "failed requests at idle (the API GET sampler, same run)",
                r.idle_errors.total, unit="requests", meets_goal=r.errors.total == 0, zero_ratio=1.0, goal=0,
                by_kind=kinds, **common)
    idle_ms = [x * 1000 for x in r.idle_latencies]
    load_ms = [x * 1000 for x in r.load_latencies]
    # where the tail is: the first seconds (everyone creating, uploading and submitting at once) or all along
    burst = [ms for ms, t in zip(load_ms, r.load_sent_at, strict=True) if t < BURST_S]
    after = [ms for ms, t in zip(load_ms, r.load_sent_at, strict=True) if t >= BURST_S]
    settled_ms = [x * 1000 for x in r.settled_latencies]
    load_p99, before_p99 = percentile(load_ms, 99), percentile(idle_ms, 99)
    emit_record("api_get_p99_under_load", load_p99, "p99 of the same GET at idle after the load (same answer), same run",
                percentile(settled_ms, 99), unit="ms", goal=5, request="GET /api/v1/jobs?limit=20 (public URL)",
                p50_ms=round(median(load_ms), 2), settled_p50_ms=round(median(settled_ms), 2),
                samples=len(load_ms), settled_samples=len(settled_ms), settled_errors=r.settled_errors.total,
                idle_before_p99_ms=num(before_p99, 2), idle_before_p50_ms=round(median(idle_ms), 2),
                ratio_to_idle_before=num(load_p99 / before_p99, 3) if before_p99 else None,
                p99_first_10s_ms=num(percentile(burst, 99), 2), samples_first_10s=len(burst),
                p99_after_10s_ms=num(percentile(after, 99), 2), **common)
    fair = r.fair
    emit_record("fair_share_violations", len(fair.fair_share), "a queue that always picks the owner with the "
                "fewest active jobs", 0, unit="jobs", meets_goal=not fair.fair_share and not fair.limits,
                zero_ratio=1.0, goal=0, limit_violations=len(fair.limits), decisions=fair.decisions,
                picked=fair.picked, max_active=fair.max_active, max_active_per_user=fair.max_active_per_user,
                max_running=prof.max_running, max_running_per_user=prof.max_running_per_user,
                examples=(fair.fair_share + fair.limits)[:5], **common)
    ep = r.endpoint
    emit_record("endpoint_throughput", ep.rps, "target rate", prof.rate, unit="requests/s",
                meets_goal=ep.failed == 0 and ep.rps >= 0.95 * prof.rate, goal_min_ratio=0.95, errors=ep.failed,
                ok=ep.ok, seconds=round(ep.seconds, 2), **common)
    emit_record("uploads_completed", r.uploads_done, "uploads started", prof.uploads, unit="uploads",
                meets_goal=r.uploads_done == prof.uploads, **common)
    succeeded = r.states.get("succeeded", 0)
    emit_record("jobs_succeeded", succeeded, "jobs submitted", r.submitted, unit="jobs",
                meets_goal=succeeded == r.submitted == prof.jobs, states=r.states, **common)


def bench(base: Path, quick: bool) -> None:
    run_then_cleanup(Bench(base, quick))


def main(argv: list[str] | None = None) -> int:
    return cli(bench, __doc__, quick_help="10 users, 20 jobs, 4 uploads, 50 requests/s for 10 s: about a minute "
               "after the platform is up", keep_help="put the platform under DIR and leave it there",
               prefix="floyd-bench-load-", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
