"""Running picked jobs: prepare, start through the executor, watch (logs, max runtime, system
samples), stop, record the end, and take back after a restart what a previous bridge left running.

Everything that lets a restarted bridge find its work again (the job row, the container's
labels, the persisted log) is written before the work starts. The runner never picks: it is
handed job ids that the queue marked ``starting`` and calls ``on_finished`` when one ends, so
the queue can fill the slot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Float
from traitlets.config import LoggingConfigurable

from jobs_bridge.errors import InsufficientStorage, Unavailable, translate
from jobs_bridge.executors.base import EngineUnavailable, Executor, ExecutorError, RunEnded
from jobs_bridge.jobs import states
from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.jobs.metrics import JobMetrics
from jobs_bridge.jobs.offload import Offload
from jobs_bridge.jobs.outcome import (
    DISK_FULL,
    Preparing,
    disk_full,
    failure_reason,
    freeze_output,
    start_failure,
)
from jobs_bridge.jobs.prepare import JobPreparer
from jobs_bridge.jobs.records import job_name
from jobs_bridge.jobs.retries import take_retry
from jobs_bridge.orm import Job
from jobs_bridge.resources.gpus import GpuAllocator, gpu_utilization
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.timeutil import aware, utcnow
from jobs_bridge.watchers import watch

STOP_GRACE = 10  # seconds between SIGTERM and SIGKILL when a job is stopped
RETRY_MAX = 10.0  # most seconds between two tries of a database write that must not be lost
ENGINE_RESTARTED = "the Docker engine stopped or restarted while the job ran"
ENGINE_WAIT = "the Docker engine is not answering; waiting for it to come back"
ENGINE_POLL = 2.0  # seconds between tries to reach a Docker engine that went away
PLACEMENT_POLL = 1.0  # most seconds between looks at a run the runtime has not placed yet
T = TypeVar("T")


class RunningJob:
    """A job this bridge started or took back: its log, its handle, and whether a stop was asked."""

    def __init__(self, job_id: int, logs: LogStore) -> None:
        self.job_id = job_id
        self.logs = logs
        self.handle = ""
        self.workdir = ""
        self.stop_reason: str | None = None  # "stopped" or "timed_out" once asked
        self.placing = False  # taken back after a restart while the runtime still placed it
        self.output = asyncio.Event()  # its first line came: it runs (or ran), placed or not
        self.done = asyncio.Event()


class JobRunner(LoggingConfigurable):
    stats_interval = Float(
        10.0, help="Seconds between samples of a job's CPU, memory and GPU use (default 10; 0 turns sampling off).",
    ).tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, preparer: JobPreparer,
                 gpus: GpuAllocator, executor: Executor, metrics: JobMetrics, offload: Offload,
                 on_finished: Callable[[int], None], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.preparer = preparer
        self.gpus = gpus
        self.executor = executor
        self.metrics = metrics
        self.run = offload
        self.on_finished = on_finished
        self.running: dict[int, RunningJob] = {}
        self.closing = False
        self.change = asyncio.Event()  # set (and replaced) when a job is launched or a queued one stopped

    # -- starting ---------------------------------------------------------------------------
    def launch(self, job_id: int) -> None:
        """Run a job the queue picked (call on the event loop)."""
        try:
            with self.sessions() as s:
                job = s.get(Job, job_id)
                assert job is not None
                log_path = self.layout.job_log(job.owner, job.project, job.number)
            logs = LogStore(log_path)
        except Exception as exc:  # no room for its log directory, the database gone: it fails, others go on
            self.log.warning("Job %s could not start: %s", job_id, exc)
            asyncio.ensure_future(self._finish(job_id, states.FAILED, None, failure_reason(exc)))
            return
        self.running[job_id] = RunningJob(job_id, logs)
        self.wake_waiters()
        asyncio.ensure_future(self._run(job_id))

    def wake_waiters(self) -> None:
        """Wake whoever waits for a queued job to start or end (log followers): no polling."""
        change, self.change = self.change, asyncio.Event()
        change.set()

    async def _run(self, job_id: int) -> None:
        rj = self.running[job_id]
        try:
            rj.workdir, handle = await self.run(self._prepare_and_start, rj)
            if handle and rj.stop_reason:  # a stop arrived while the container was being created
                rj.handle = handle
                await self.run(self.executor.stop, handle, rj.workdir, STOP_GRACE)
        except Exception as exc:
            reason, unexpected = start_failure(exc)
            if unexpected:
                self.log.warning("Job %s could not start", job_id, exc_info=exc)
            await self._finish(job_id, states.FAILED, None, reason)
            return
        if not handle:
            await self._finish(job_id, rj.stop_reason or states.STOPPED, None, "stopped before it started")
            return
        rj.handle = handle
        await self._watch(rj, skip_lines=0, mark_running=True)

    def _prepare_and_start(self, rj: RunningJob) -> tuple[str, str]:
        """The job's workdir and handle ("" if a stop came first) in one trip off the loop, which
        is busy just then (the job's follower arrives): its turn between the two cost milliseconds."""
        try:
            spec = self.preparer.prepare(rj.job_id)
        except Exception as exc:
            raise Preparing() from exc
        return spec.workdir, "" if rj.stop_reason else self.executor.start(spec)

    def _mark_running(self, job_id: int, handle: str, mark: bool, running: bool = True) -> tuple[int, datetime | None]:
        """With ``mark``, record the job's handle and (``running``) that it runs; its max runtime
        and start time. A job that ended meanwhile keeps its end."""
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            assert job is not None
            if mark and job.state in states.ACTIVE:
                job.handle = handle
                if running:
                    job.state = states.RUNNING
                    job.reason = ""
                    job.started_at = utcnow()
            return job.max_runtime, job.started_at

    async def _until_running(self, rj: RunningJob) -> None:
        """A run the runtime still has to place (a pending Swarm task): the job stays ``starting``
        with the runtime's reason until it runs; then it is recorded ``running``."""
        shown: str | None = None
        delay, handle = 0.05, rj.handle  # quick looks while a task is about to run, then every PLACEMENT_POLL
        while not rj.done.is_set() and not self.closing and rj.handle == handle:  # a retry follows its own
            try:
                reason = None if rj.output.is_set() else await self.run(self.executor.pending_reason, handle)
            except ExecutorError:  # the engine does not answer: wait() decides what became of it
                reason = shown
            if reason is None:
                await self.persist(self._mark_running, rj.job_id, handle, True)
                return
            if reason != shown:
                await self.persist(self._set_reason, rj.job_id, reason)
                shown = reason
            try:  # a first line ends the wait at once: a quick job may end before the next look
                await asyncio.wait_for(rj.output.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 1.5, PLACEMENT_POLL)

    # -- watching ---------------------------------------------------------------------------
    async def _watch(self, rj: RunningJob, skip_lines: int, mark_running: bool = False) -> None:
        """Follow logs, enforce max runtime, sample system metrics, record the end. The log is
        attached before anything else (``mark_running`` writes the database after), so a
        job's first line waits for nothing but the runtime."""
        loop = asyncio.get_running_loop()

        def emit(lines: list[str]) -> None:
            self.metrics.add_lines(rj.job_id, lines)
            loop.call_soon_threadsafe(rj.logs.append, lines)
            loop.call_soon_threadsafe(rj.output.set)

        log_task = watch(loop, self.executor.stream_logs, rj.handle, rj.workdir, skip_lines, emit,
                         lambda: self.closing)
        wait_task = watch(loop, self.executor.wait, rj.handle, rj.workdir)
        pending = self.executor.places_later and (mark_running or rj.placing)
        max_runtime, started = await self.persist(self._mark_running, rj.job_id, rj.handle, mark_running,
                                                  not pending)
        if pending:
            asyncio.ensure_future(self._until_running(rj))
        timer = None
        if max_runtime:
            elapsed = (utcnow() - aware(started)).total_seconds() if started else 0
            timer = loop.call_later(max(0.0, max_runtime - elapsed),
                                    lambda: asyncio.ensure_future(self.stop(rj, states.TIMED_OUT)))
        sampler = asyncio.ensure_future(self._sample(rj)) if self.stats_interval else None
        code: int | None = None
        ended: RunEnded | None = None
        try:
            code = await wait_task
            if self.closing:
                return
            await log_task
        except EngineUnavailable:  # the engine went away: what became of the job is known once it is back
            self.log.warning("Job %s: the Docker engine stopped answering; waiting for it", rj.job_id)
        except RunEnded as exc:  # the runtime knows it ended with no exit code (its node went away)
            ended = exc
        finally:
            if timer:
                timer.cancel()
            if sampler:
                sampler.cancel()
        if self.closing:
            return
        if ended is not None:
            await self._ended_without_code(rj, ended)
        elif code is None:
            await self._engine_lost(rj)
        else:
            await self._ended(rj, code, max_runtime)

    async def _ended(self, rj: RunningJob, code: int, max_runtime: int) -> None:
        """The process exited: flush its metrics, choose the state, remove the container, record."""
        try:
            await self.run(self.metrics.flush)
        except Exception as exc:  # kept in the buffer; the flush loop writes them later
            self.log.warning("Writing the metrics of job %s failed: %s", rj.job_id, exc)
        state, reason = self._outcome(rj, code, max_runtime)
        if state == states.FAILED and (rj.logs.disk_full or disk_full(rj.workdir)):
            reason = f"{reason}; {DISK_FULL}"
        try:
            await self.run(self.executor.cleanup, rj.handle)
        except EngineUnavailable:  # it exited as the engine went away: the engine's doing, not the job's
            if state == states.FAILED:
                state, reason = states.LOST, f"{ENGINE_RESTARTED} (its container exited with code {code})"
            asyncio.ensure_future(self._cleanup_later(rj.handle))
        await self._finish(rj.job_id, state, code, reason)

    async def _ended_without_code(self, rj: RunningJob, ended: RunEnded) -> None:
        """``lost`` (or ``failed`` when it never started), unless a stop was asked for."""
        try:
            await self.run(self.executor.cleanup, rj.handle)
        except EngineUnavailable:
            asyncio.ensure_future(self._cleanup_later(rj.handle))
        state = states.LOST if ended.lost else states.FAILED
        await self._finish(rj.job_id, rj.stop_reason or state, None,
                           "stopped by request" if rj.stop_reason == states.STOPPED else ended.message)

    async def _engine_lost(self, rj: RunningJob) -> None:
        """Wait until the engine answers again, then take the job back if its container still
        runs (``live-restore``), else record it ``lost``: the engine's restart ended it."""
        await self.persist(self._set_reason, rj.job_id, ENGINE_WAIT)
        while not self.closing:
            try:
                found = {f.job_id: f for f in await self.run(lambda: list(self.executor.find()))}
                break
            except Exception as exc:  # not answering, or answering errors while it starts: not back yet
                self.log.debug("Job %s: the Docker engine is not back yet: %s", rj.job_id, exc)
                await asyncio.sleep(ENGINE_POLL)
        else:
            return
        f = found.get(rj.job_id)
        if f is not None and f.running:
            self.log.info("Job %s: the Docker engine is back and the job still runs; re-attached", rj.job_id)
            await self.persist(self._set_reason, rj.job_id, "")
            await self._watch(rj, skip_lines=rj.logs.count)
            return
        if f is not None:
            await self._cleanup_later(f.handle)
        reason = ENGINE_RESTARTED + (f" (its container exited with code {f.exit_code})" if f is not None
                                     else "; its container was gone")
        code = f.exit_code if f is not None else None
        if rj.stop_reason:
            await self._finish(rj.job_id, rj.stop_reason, code, "stopped by request" if
                               rj.stop_reason == states.STOPPED else reason)
        else:
            await self._finish(rj.job_id, states.LOST, code, reason)

    async def _cleanup_later(self, handle: str) -> None:
        """Remove a container once the engine answers again (it may be restarting)."""
        while not self.closing:
            try:
                await self.run(self.executor.cleanup, handle)
                return
            except EngineUnavailable:
                await asyncio.sleep(ENGINE_POLL)
            except Exception:  # the engine answered: nothing more to wait for
                self.log.warning("Removing container %s failed", handle, exc_info=True)
                return

    def _set_reason(self, job_id: int, reason: str) -> None:
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            if job is not None and job.state in states.ACTIVE:
                job.reason = reason

    @staticmethod
    def _outcome(rj: RunningJob, code: int, max_runtime: int) -> tuple[str, str]:
        """A requested stop or time-out wins; else exit code 0 succeeded, anything else failed."""
        if rj.stop_reason == states.STOPPED:
            return states.STOPPED, "stopped by request"
        if rj.stop_reason:
            return rj.stop_reason, f"ran past its max runtime of {max_runtime} s; output kept"
        if code == 0:
            return states.SUCCEEDED, ""
        return states.FAILED, f"exited with code {code}"

    async def _sample(self, rj: RunningJob) -> None:
        """CPU and memory from the executor, GPU utilization from nvidia-smi where it exists."""
        with self.sessions() as s:
            job = s.get(Job, rj.job_id)
            devices = json.loads(job.gpu_devices) if job else []
        while True:
            await asyncio.sleep(self.stats_interval)
            stats = await self.run(self.executor.system_stats, rj.handle)
            if devices and not any(k.startswith("system/gpu") for k in stats):  # the runtime's own, else here
                stats.update(await self.run(gpu_utilization, devices))
            for name, value in stats.items():
                self.metrics.add(rj.job_id, name, value, None)

    # -- the end ------------------------------------------------------------------------------
    async def _retried(self, job_id: int, reason: str) -> bool:
        """A lost run of a job with retries left runs again in the same slot (jobs/retries.py)."""
        rj = self.running.get(job_id)
        if rj is None or rj.stop_reason or self.closing:
            return False
        retry = await self.persist(take_retry, self.sessions, job_id, reason)
        if retry is None:
            return False
        self.log.info("Job %s was lost (%s); attempt %s of %s", retry.name, reason, retry.attempt, retry.total)
        rj.logs.append([retry.log_line(reason)])
        await self.run(self.gpus.release, f"job:{retry.name}")  # leased anew: the old ones may be on the lost machine
        old, rj.handle, rj.placing, rj.output = rj.handle, "", False, asyncio.Event()
        if old:
            await self._cleanup_later(old)  # also waits for an engine that restarts, and frees the name
        try:
            await self.run(self.preparer.release_code, job_id)
        except Exception:
            self.log.exception("Releasing the code of job %s failed; its next attempt makes it afresh", job_id)
        asyncio.ensure_future(self._run(job_id))
        return True

    async def _finish(self, job_id: int, state: str, code: int | None, reason: str) -> None:
        if state == states.LOST and await self._retried(job_id, reason):
            return
        rj = self.running.pop(job_id, None)
        try:
            try:  # before the end is recorded: an ended job's code/ is a plain directory again
                await self.run(self.preparer.release_code, job_id)
            except Exception:
                self.log.exception("Releasing the code of job %s failed; the next start retries", job_id)
            await self.persist(self.record_end, job_id, state, code, reason)
            if rj is not None:
                if reason and state != states.SUCCEEDED:
                    rj.logs.append([f"[floyd] job {state}: {reason}"])
                rj.logs.finish()
        except Exception:
            self.log.exception("Recording the end of job %s failed", job_id)
        finally:
            if rj is not None:
                rj.done.set()
            self.on_finished(job_id)

    async def persist(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a database write that must not be lost, again and again while the platform
        cannot take it (disk full, database down), until it can or the bridge closes."""
        delay, tries = 1.0, 0
        while True:
            try:
                return await self.run(fn, *args)
            except Exception as exc:
                mapped = translate(exc)
                if self.closing or not isinstance(mapped, (InsufficientStorage, Unavailable)):
                    raise
                if tries % 10 == 0:
                    self.log.warning("%s failed (%s); trying again until it works", fn.__name__, mapped.log_message)
            tries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    def record_end(self, job_id: int, state: str, code: int | None, reason: str) -> None:
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            assert job is not None
            job.state = state
            job.exit_code = code
            job.reason = reason
            job.finished_at = utcnow()
            if job.started_at is None and code is not None:  # it ran, too quickly to be seen running
                job.started_at = job.finished_at
            job.token_hash = ""  # the job's token dies with it
            name = job_name(job)
            output = self.layout.job_output(job.owner, job.project, job.number)
        self.gpus.release(f"job:{name}")
        if output.is_dir():
            freeze_output(output)
            # hashed now, in the background, so registering it as a model later reads no bytes
            self.preparer.datasets.output_hashes.submit(output)

    async def stop(self, rj: RunningJob, reason: str) -> None:
        """Ask a running job to stop (``stopped`` or ``timed_out``); returns once its end is recorded."""
        if rj.stop_reason:
            return
        rj.stop_reason = reason
        if rj.handle:
            await self.run(self.executor.stop, rj.handle, rj.workdir, STOP_GRACE)
        await rj.done.wait()

    # -- restart ------------------------------------------------------------------------------
    async def recover(self) -> None:
        """Take back the jobs a previous bridge left running; record the ones that ended or vanished."""
        found = {f.job_id: f for f in await self.run(lambda: list(self.executor.find()))}
        with self.sessions() as s:
            active = [(j.id, j.state, j.handle, j.owner, j.project, j.number) for j in
                      s.scalars(select(Job).where(Job.state.in_(states.ACTIVE)))]
        for job_id, state, handle, owner, project, number in active:
            f = found.get(job_id)
            if f is None or (state == states.STARTING and not handle):
                if f is not None:
                    await self.run(self.executor.cleanup, f.handle)
                await self.run(self.preparer.release_code, job_id)  # before it reads `lost`: its code is a plain dir then
                await self.run(self.record_end, job_id, states.LOST,
                               None, "the bridge restarted and its container was gone" if f is None
                               else "the bridge restarted while the job was starting")
                continue
            logs = LogStore(self.layout.job_log(owner, project, number))
            rj = RunningJob(job_id, logs)
            rj.handle = f.handle
            rj.workdir = str(self.layout.job_dir(owner, project, number))
            rj.placing = state == states.STARTING
            self.running[job_id] = rj
            self.log.info("Re-attached job %s (%s lines already logged)", job_id, logs.count)
            asyncio.ensure_future(self._watch(rj, skip_lines=logs.count))
        released = await self.run(self.preparer.release_leftovers, set(self.running))
        if released:
            self.log.info("Released the code overlays of %s ended jobs", released)

    def close(self) -> None:
        """Let go of the running jobs (they go on; the next bridge takes them back)."""
        self.closing = True
        for rj in self.running.values():
            if not rj.logs.complete:
                rj.logs.close()
