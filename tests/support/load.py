"""The load run: many users at once submitting jobs and uploading datasets, while an endpoint
serves a steady request rate and an API GET is timed. Shared by benchmarks/load.py and
tests/load/test_load_smoke.py, so the benchmark's figures and the test's assertions come
from the same traffic.

Everything goes through the public URL (configurable-http-proxy → hub or bridge) on 127.0.0.1,
as users' clients do: users are created through the Hub's API, code and datasets go up through
the client library (floyd.client.transfer), jobs through FloydClient. Every loop is bounded.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from floyd.client import FloydClient
from floyd.client.statcache import StatCache
from floyd.client.transfer import upload, upload_code
from tests.support.fairshare import Report, check
from tests.support.loadgen import ApartSampler, ErrorTally, OpenLoopResult, open_loop
from tests.support.platform import Platform, User, write_tree
from tests.support.serving import ASGI_OK_APP, deploy_ready

FINISHED = {"succeeded", "failed", "stopped", "timed_out", "lost"}


@dataclass(frozen=True)
class Profile:
    """How much load: users, jobs and uploads started at once, endpoint rate and duration."""

    users: int
    jobs: int
    uploads: int
    rate: float  # endpoint requests/s
    seconds: float  # endpoint load duration
    max_running: int = 4
    max_running_per_user: int = 2
    job_seconds: float = 1.0
    idle_seconds: float = 5.0
    timeout: float = 900.0  # the whole load phase, jobs included

    def bridge_config(self) -> str:
        return (f"c.JobQueue.max_running = {self.max_running}\n"
                f"c.JobQueue.max_running_per_user = {self.max_running_per_user}\n")

    def jobs_per_user(self) -> list[int]:
        """A fifth of the users (at least one) submit most jobs, the rest one each, so fair share
        has heavy users to hold back while light users wait. The heavy share falls off linearly
        (the first heavy user submits the most), so towards the end one user still has jobs
        queued with slots free: the per-user limit is what holds them then."""
        heavy = max(1, self.users // 5)
        light = self.users - heavy
        spare = max(0, self.jobs - light)
        weights = [heavy - i for i in range(heavy)]
        counts = [spare * w // sum(weights) for w in weights]
        for i in range(spare - sum(counts)):
            counts[i % heavy] += 1
        return counts + [1] * light


SETTLE_S = 2.0  # after the last job ended, before the settled idle baseline

FULL = Profile(users=50, jobs=100, uploads=20, rate=200.0, seconds=60.0, idle_seconds=10.0)
QUICK = Profile(users=10, jobs=20, uploads=4, rate=50.0, seconds=10.0, timeout=300.0)


@dataclass
class LoadResult:
    profile: Profile
    errors: ErrorTally
    idle_errors: ErrorTally
    idle_latencies: list[float]  # before the load: the user has no job yet, the list is empty
    load_latencies: list[float]
    load_sent_at: list[float]  # when each of load_latencies' requests was sent, s after the load began
    endpoint: OpenLoopResult
    uploads_done: int
    jobs: list[dict]
    fair: Report
    load_seconds: float
    submitted: int = 0
    states: dict[str, int] = field(default_factory=dict)
    # after the load, every job ended: the same list as under load (20 jobs), the platform idle again
    settled_latencies: list[float] = field(default_factory=list)
    settled_errors: ErrorTally = field(default_factory=ErrorTally)


class LoadRun:
    """One load run on a started ``platform`` (configured with ``profile.bridge_config()``)."""

    def __init__(self, platform: Platform, profile: Profile, workdir: Path, prefix: str = "load") -> None:
        self.p = platform
        self.profile = profile
        self.workdir = workdir
        self.prefix = prefix
        self.users: list[User] = []
        self.errors = ErrorTally()
        self.endpoint_path = ""
        self.endpoint_key = ""
        self.uploads_done = 0
        self.submitted = 0
        self._count_lock = threading.Lock()

    # -- before the load --------------------------------------------------------------------
    def prepare(self) -> None:
        """Users (through the Hub), their code trees and dataset trees, and the endpoint with a key."""
        self.users = [self.p.user(f"{self.prefix}{i:02d}") for i in range(self.profile.users)]
        for i in range(self.profile.users):
            write_tree(self.workdir / "code" / str(i), {"README.md": f"job code of user {i}\n".encode()})
        for j in range(self.profile.uploads):
            files = {f"part{k}/file{n}.txt": f"upload {j} part {k} file {n}\n".encode() * (50 + n)
                     for k in range(2) for n in range(5)}
            write_tree(self.workdir / "data" / str(j), files)
        owner = self.p.user(f"{self.prefix}srv")
        deploy_ready(owner, "echo", {"app.py": ASGI_OK_APP}, self.workdir / "deploy")
        r = owner.api("POST", f"endpoints/{owner.name}/echo/keys", json={"name": "load"})
        assert r.status_code == 201, r.text
        self.endpoint_key = r.json()["key"]
        self.endpoint_path = f"/services/floyd/endpoints/{owner.name}/echo/"

    def sampler(self, errors: ErrorTally) -> ApartSampler:
        """The API GET timed before and during the load: a user's 20 newest jobs, from a process
        of its own (ApartSampler says why)."""
        return ApartSampler(self.p.api_url + "jobs?limit=20", self.users[0].headers, errors)

    def idle_baseline(self) -> tuple[list[float], ErrorTally]:
        errors = ErrorTally()
        sampler = self.sampler(errors)
        sampler.start()
        time.sleep(self.profile.idle_seconds)
        return sampler.finish(time.perf_counter()), errors

    def settled_baseline(self) -> tuple[list[float], ErrorTally]:
        """The idle GET again once everything has ended: the same answer as under load (the user's
        20 newest jobs, where before the load there were none), so the two differ only by the load."""
        time.sleep(SETTLE_S)  # the last containers' removal and the access log's last batch
        return self.idle_baseline()

    # -- the load ---------------------------------------------------------------------------
    def run(self) -> LoadResult:
        """prepare(), the idle baseline, everything at once until every job has ended, then the
        settled baseline."""
        self.prepare()
        idle, idle_errors = self.idle_baseline()
        prof = self.profile
        stop = threading.Event()
        workers = prof.users + prof.uploads
        start = threading.Barrier(workers, timeout=120)
        sampler = self.sampler(self.errors)
        sampler.start()
        t0, origin = time.monotonic(), time.perf_counter()
        with ThreadPoolExecutor(workers + 1, thread_name_prefix="load") as pool:
            served = pool.submit(open_loop, self.p.hub_port, self.endpoint_path,
                                 {"Authorization": f"Bearer {self.endpoint_key}"}, prof.rate, prof.seconds, self.errors)
            work = [pool.submit(self._user_work, i, n, start) for i, n in enumerate(prof.jobs_per_user())]
            work += [pool.submit(self._upload_work, j, start) for j in range(prof.uploads)]
            try:
                for f in work:
                    f.result()
                jobs = self._wait_jobs(t0 + prof.timeout)
                endpoint = served.result()
            finally:
                stop.set()
                sampler.finish(origin)
        seconds = time.monotonic() - t0
        result = self._result(idle, idle_errors, sampler, endpoint, jobs, seconds)
        result.settled_latencies, result.settled_errors = self.settled_baseline()
        return result

    def _user_work(self, i: int, jobs: int, start: threading.Barrier) -> None:
        """One user: create a project, upload its code (a snapshot), submit ``jobs`` jobs."""
        user = self.users[i]
        client = FloydClient(self.p.url, user.token)
        cache = StatCache(self.workdir / "home" / user.name / "stat-cache.sqlite")  # each user's own laptop
        try:
            start.wait()
            self.errors.guard("project create", lambda: client.create_project("load"))
            snap = self.errors.guard("code upload", lambda: upload_code(client, user.name, "load",
                                                                        self.workdir / "code" / str(i), cache=cache))
            if snap is None:
                return
            command = f"python -c 'import time; time.sleep({self.profile.job_seconds})'"
            body = {"project": f"{user.name}/load", "snapshot": snap.version["id"], "command": command,
                    "cpus": 0.25, "memory": "256M"}
            for _ in range(jobs):
                if self.errors.guard("job submit", lambda: client.submit_job(body)) is not None:
                    with self._count_lock:
                        self.submitted += 1
        finally:
            cache.close()

    def _upload_work(self, j: int, start: threading.Barrier) -> None:
        """One dataset upload (a small tree of 10 files) by one of the users."""
        user = self.users[j % len(self.users)]
        client = FloydClient(self.p.url, user.token)
        start.wait()
        if self.errors.guard("dataset create", lambda: client.create_dataset(f"data{j}")) is None:
            return
        if self.errors.guard("dataset upload", lambda: upload(client, user.name, f"data{j}",
                                                              self.workdir / "data" / str(j))) is not None:
            with self._count_lock:
                self.uploads_done += 1

    def _wait_jobs(self, deadline: float) -> list[dict]:
        """Every job of these users, once all have ended (the admin's list, polled once a second)."""
        owners = {u.name for u in self.users}
        assert self.p.admin is not None
        admin = FloydClient(self.p.url, self.p.admin.token)
        jobs: list[dict] = []
        while time.monotonic() < deadline:
            items = self.errors.guard("job list", lambda: admin.get_json("jobs", limit=1000)["items"])
            jobs = [j for j in items or [] if j["owner"] in owners]
            if len(jobs) >= self.submitted and all(j["state"] in FINISHED for j in jobs):
                return jobs
            time.sleep(1.0)
        self.errors.add("jobs", f"not all ended within {self.profile.timeout:.0f} s")
        return jobs

    def _result(self, idle: list[float], idle_errors: ErrorTally, load: ApartSampler, endpoint: OpenLoopResult,
                jobs: list[dict], seconds: float) -> LoadResult:
        states: dict[str, int] = {}
        for j in jobs:
            states[j["state"]] = states.get(j["state"], 0) + 1
            if j["state"] != "succeeded":
                self.errors.add("job", f"{j['state']}: {j['reason']}")
        fair = check(jobs, self.profile.max_running, self.profile.max_running_per_user)
        return LoadResult(self.profile, self.errors, idle_errors, idle, load.latencies, load.sent_at, endpoint,
                          self.uploads_done, jobs, fair, seconds, self.submitted, states)
