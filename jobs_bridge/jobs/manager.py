"""The JobManager: the one object the handlers and the app talk to about jobs.

It wires the parts and keeps none of their rules: the queue (jobs/queue.py: submission and the
pick, with the pure policy in jobs/policy.py), the runner (jobs/runner.py: prepare, start, watch,
stop, finish, recover), reading (jobs/reading.py) and metrics (jobs/metrics.py). What it does
itself is the glue: kick the queue when something may start, hand picked jobs to the runner,
flush metrics, and route a stop to the queue or to the runner.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import Conflict, translate
from jobs_bridge.executors.base import Executor
from jobs_bridge.jobs import states
from jobs_bridge.jobs.metrics import JobMetrics
from jobs_bridge.jobs.offload import Offload
from jobs_bridge.jobs.prepare import JobPreparer
from jobs_bridge.jobs.queue import JobQueue
from jobs_bridge.jobs.reading import JobReader
from jobs_bridge.jobs.runner import JobRunner, RunningJob
from jobs_bridge.jobs.spec import SpecResolver
from jobs_bridge.jobs.tracking import Tracking
from jobs_bridge.orm import Job
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.storage.paths import StorageLayout

FLUSH_INTERVAL = 0.5  # seconds between metric batches
RETRY_PICK = 2.0  # seconds before the queue tries again when the database did not answer
THREADS = 32  # log streams and waits hold a thread each for as long as their job runs


class JobManager(LoggingConfigurable):
    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, resolver: SpecResolver,
                 gpus: GpuAllocator, executor: Executor, public_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.resolver = resolver
        self.executor = executor
        self.offload = Offload(THREADS, "jobs")
        self.metrics = JobMetrics(sessions)
        self.reader = JobReader(sessions)
        self.tracking = Tracking(sessions, layout, self.metrics)  # the MLflow-compatible API
        self.queue = JobQueue(sessions, layout, resolver, gpus, executor, parent=self)
        preparer = JobPreparer(sessions, layout, resolver.datasets, gpus, executor, public_url, parent=self)
        self.runner = JobRunner(sessions, layout, preparer, gpus, executor, self.metrics, self.offload, self.ended,
                                parent=self)
        # Called with a job's id when it ends (on the event loop): pipelines move on.
        self.ended_listeners: builtins.list[Callable[[int], None]] = []
        self._schedule_lock = asyncio.Lock()
        resolver.datasets.use_checks.append(self.reader.version_used_by)

    @property
    def change(self) -> asyncio.Event:
        """Set at the next launch or queued stop (then replaced): what a queued job's follower awaits."""
        return self.runner.change

    @property
    def running(self) -> dict[int, RunningJob]:
        """Jobs started or taken back by this bridge, by job id (their live logs)."""
        return self.runner.running

    # -- reading (blocking: the handlers call these in threads) ----------------------------------
    def get(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        return self.reader.get(caller, owner, project, number)

    def list(self, caller: Caller, project: str | None = None, group: int | None = None, state: str | None = None,
             limit: int = 200) -> builtins.list[dict]:
        return self.reader.list(caller, project, group, state, limit)

    def job_id(self, caller: Caller, owner: str, project: str, number: int | str) -> int:
        return self.reader.job_id(caller, owner, project, number)

    def state_of(self, job_id: int) -> str:
        return self.reader.state_of(job_id)

    def metrics_of(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        return self.reader.metrics_of(caller, owner, project, number)

    def packages(self, caller: Caller, owner: str, project: str, number: int | str) -> builtins.list[str]:
        return self.reader.packages(caller, owner, project, number)

    def job_by_token(self, token: str) -> Job | None:
        return self.reader.job_by_token(token)

    def report_metrics(self, job_id: int, items: object) -> int:
        return self.metrics.report(job_id, items)

    # -- changing ----------------------------------------------------------------------------
    def submit(self, caller: Caller, body: dict) -> dict:
        """Queue the job (or sweep) and start what may start now (blocking: a handler's thread)."""
        result = self.queue.submit(caller, body)
        self.pick_here()
        return result

    def pick_here(self) -> None:
        """Pick in the calling thread and hand the picked jobs to the runner: a free slot's job
        goes to its container without a trip through a busy event loop and back to a thread
        first (the new job's log follower arrives on the loop just then)."""
        loop = self.offload.loop
        if loop is None or self.runner.closing:
            return
        try:
            picked = self.queue.pick()
        except Exception as exc:  # the job is queued: the loop's own pick tries again (and waits)
            self.log.warning("Picking after a submission failed (%s); the queue tries again", exc)
            self.kick()
            return
        if picked:
            try:
                loop.call_soon_threadsafe(self._launch, picked)
            except RuntimeError:  # the loop closed meanwhile: the next start records them lost (recover)
                self.log.warning("Jobs %s were picked as the bridge stopped", picked)

    def _launch(self, picked: builtins.list[int]) -> None:
        for job_id in picked:
            self.runner.launch(job_id)

    async def stop(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        def lookup() -> tuple[int, str]:
            with self.reader.sessions() as s:
                job = self.reader.find(s, caller, owner, project, number)
                return job.id, job.state

        job_id, state = await self.offload(lookup)
        if state in states.FINISHED:
            raise Conflict(f"Job {owner}/{project}/{number} has already ended ({state}).")
        if state == states.QUEUED and await self.offload(self.queue.stop_queued, job_id):
            self.runner.wake_waiters()
            self.ended(job_id)
        else:
            rj = self.runner.running.get(job_id)
            if rj is not None:
                await self.runner.stop(rj, states.STOPPED)
        return await self.offload(self.reader.get, caller, owner, project, number)

    # -- the queue's heartbeat: no polling, a kick on submit, on every finish, on a queued stop -----
    def ended(self, job_id: int) -> None:
        """A job ended: the queue may start another, and its listeners hear of it."""
        self.kick()
        for listener in self.ended_listeners:
            listener(job_id)

    def kick(self) -> None:
        """Start whatever can start now (safe from any thread)."""
        loop = self.offload.loop
        if loop is not None and not self.runner.closing:
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._schedule()))

    async def _schedule(self) -> None:
        async with self._schedule_lock:
            try:
                picked = await self.offload(self.queue.pick)
            except Exception as exc:  # the database is down or full: the queue waits, then tries again
                if translate(exc) is None:
                    raise
                self.log.warning("The queue could not pick jobs (%s); trying again in %s s", exc, RETRY_PICK)
                asyncio.get_running_loop().call_later(RETRY_PICK, self.kick)
                return
            self._launch(picked)

    # -- start-up and shutdown ------------------------------------------------------------------
    async def start(self) -> None:
        self.offload.bind()
        await self.runner.recover()
        asyncio.ensure_future(self._flush_loop())
        self.kick()

    async def flush_metrics(self) -> None:
        await self.offload(self.metrics.flush)

    async def _flush_loop(self) -> None:
        failing = False
        while not self.runner.closing:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush_metrics()
            except Exception as exc:
                if translate(exc) is None:
                    self.log.exception("Writing metrics failed")
                elif not failing:
                    self.log.warning("Writing metrics failed (%s); they are kept until it works again", exc)
                failing = True
            else:
                failing = False

    async def close(self) -> None:
        self.runner.close()
        await self.flush_metrics()
        self.offload.shutdown()
