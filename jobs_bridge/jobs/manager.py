"""The JobManager: submit, queue with limits, run through the executor, watch, recover.

Everything that lets a restarted bridge find its work again (the job row, the container's
labels, the persisted log) is written before the work starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.access import Caller
from jobs_bridge.errors import BadRequest, Conflict, FloydError, Unprocessable
from jobs_bridge.executors.base import Executor, ExecutorError, Mount, RunSpec
from jobs_bridge.inputs import find_job
from jobs_bridge.jobs import states
from jobs_bridge.jobs.logs import LogStore, MetricBuffer, parse_metric
from jobs_bridge.jobs.records import job_json, job_name
from jobs_bridge.jobs.spec import JobSpec, SpecResolver
from jobs_bridge.orm import DatasetVersion, GpuLease, ImagePackages, Job, JobGroup, JobMetric
from jobs_bridge.resources.gpus import GpuAllocator, gpu_utilization
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.watchers import watch

log = logging.getLogger("jobs_bridge.jobs")
T = TypeVar("T")
JOB_UID, JOB_GID = 1000, 100


@dataclass(frozen=True)
class JobLimits:
    max_running: int  # on the whole platform
    max_running_per_user: int
    stats_interval: float  # seconds between system metric samples (0 = off)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RunningJob:
    def __init__(self, job_id: int, logs: LogStore) -> None:
        self.job_id = job_id
        self.logs = logs
        self.handle = ""
        self.workdir = ""
        self.stop_reason: str | None = None  # "stopped" or "timed_out" once asked
        self.done = asyncio.Event()


class JobManager:
    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, resolver: SpecResolver,
                 gpus: GpuAllocator, executor: Executor, limits: JobLimits, public_url: str) -> None:
        self.sessions = sessions
        self.layout = layout
        self.resolver = resolver
        self.gpus = gpus
        self.executor = executor
        self.limits = limits
        self.public_url = public_url
        self.pool = ThreadPoolExecutor(32, thread_name_prefix="jobs")
        self.running: dict[int, RunningJob] = {}
        self.metrics = MetricBuffer()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._number_lock = threading.Lock()
        self._schedule_lock = asyncio.Lock()
        self._closing = False
        self._last_start: dict[str, float] = {}
        resolver.datasets.use_checks.append(self.version_used_by)

    # -- helpers ---------------------------------------------------------------------
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        assert self.loop is not None
        return await self.loop.run_in_executor(self.pool, lambda: fn(*args))

    def job_dir(self, job: Job) -> Path:
        return self.layout.root / "jobs" / job.owner / job.project / str(job.number)

    def _latest(self, s: Session, job_ids: list[int]) -> dict[int, dict[str, float]]:
        if not job_ids:
            return {}
        newest = (select(JobMetric.job_id, JobMetric.name, func.max(JobMetric.id).label("mid"))
                  .where(JobMetric.job_id.in_(job_ids)).group_by(JobMetric.job_id, JobMetric.name).subquery())
        rows = s.execute(select(JobMetric.job_id, JobMetric.name, JobMetric.value)
                         .join(newest, JobMetric.id == newest.c.mid))
        out: dict[int, dict[str, float]] = {}
        for job_id, name, value in rows:
            out.setdefault(job_id, {})[name] = value
        return out

    def _json(self, s: Session, job: Job) -> dict:
        parent = s.get(Job, job.parent_id) if job.parent_id else None
        packages = s.get(ImagePackages, job.image_id) if job.image_id else None
        return job_json(job, self._latest(s, [job.id]).get(job.id), job_name(parent) if parent else None,
                        len(json.loads(packages.packages)) if packages else None)

    # -- submitting (runs in a thread) ----------------------------------------------------
    def submit(self, caller: Caller, body: dict) -> dict:
        with self.sessions() as s:
            spec = self.resolver.resolve(s, caller, body)
        try:
            image_id = self.executor.image_id(spec.env.image)
        except ExecutorError as exc:
            raise Unprocessable(exc.message) from None
        jobs = []
        with self._number_lock, self.sessions.begin() as s:
            group_id = None
            if spec.sweep:
                group = JobGroup(owner=spec.owner, project=spec.project, concurrency=spec.concurrency,
                                 spec=json.dumps({"sweep": body.get("sweep"), "base_params": spec.params}))
                s.add(group)
                s.flush()
                group_id = group.id
            number = s.scalar(select(func.max(Job.number)).where(Job.owner == spec.owner,
                                                                 Job.project == spec.project)) or 0
            for params in spec.sweep or [{}]:
                number += 1
                job = self._new_job(spec, {**spec.params, **params}, number, caller, image_id, group_id)
                s.add(job)
                s.flush()
                jobs.append(job)
            result = [job_json(j) for j in jobs]
            for job in jobs:
                self.job_dir(job).mkdir(parents=True, exist_ok=True)
        self.kick()
        if group_id is not None:
            return {"group": {"id": group_id, "project": f"{spec.owner}/{spec.project}", "size": len(jobs),
                              "concurrency": spec.concurrency}, "jobs": result}
        return {"job": result[0]}

    def _new_job(self, spec: JobSpec, params: dict[str, str], number: int, caller: Caller, image_id: str,
                 group_id: int | None) -> Job:
        return Job(
            owner=spec.owner, project=spec.project, number=number, state=states.QUEUED, command=spec.command,
            notebook=spec.notebook, environment=spec.env.name, image=spec.env.image, image_id=image_id,
            cpus=spec.cpus, memory=spec.memory, gpus=spec.gpus, gpu_devices="[]",
            inputs=json.dumps([i.record() | {"path": i.path} for i in spec.inputs]),
            params=json.dumps(params), max_runtime=spec.max_runtime, message=spec.message, task=spec.task,
            snapshot=spec.snapshot, requirements_hash=spec.requirements_hash, parent_id=spec.parent_id,
            group_id=group_id, executor=self.executor.name, created_by=caller.name, reason="waiting for a free slot",
        )

    @staticmethod
    def version_used_by(s: Session, version: DatasetVersion) -> str | None:
        """Keep a dataset version that a job used (its record must stay reproducible)."""
        job = s.scalar(select(Job).where(Job.inputs.contains(version.version_id)).order_by(Job.id).limit(1))
        return f"job {job_name(job)} used it" if job is not None else None

    # -- reading ------------------------------------------------------------------------
    def find(self, s: Session, caller: Caller, owner: str, project: str, number: int | str) -> Job:
        try:
            n = int(number)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid job number {number!r}.") from None
        return find_job(s, caller, owner, project, n)

    def job_id(self, caller: Caller, owner: str, project: str, number: int | str) -> int:
        with self.sessions() as s:
            return self.find(s, caller, owner, project, number).id

    def state_of(self, job_id: int) -> str:
        with self.sessions() as s:
            job = s.get(Job, job_id)
            return job.state if job else states.LOST

    def get(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        with self.sessions() as s:
            return self._json(s, self.find(s, caller, owner, project, number))

    def list(self, caller: Caller, project: str | None = None, group: int | None = None, state: str | None = None,
             limit: int = 200) -> list[dict]:
        with self.sessions() as s:
            q = select(Job).order_by(Job.id.desc()).limit(min(max(limit, 1), 1000))
            if not caller.admin:
                q = q.where(Job.owner == caller.name)
            if project:
                owner, _, name = project.partition("/")
                if not name:
                    owner, name = caller.name, owner
                q = q.where(Job.owner == owner, Job.project == name)
            if group is not None:
                q = q.where(Job.group_id == group)
            if state:
                if state not in states.ALL:
                    raise BadRequest(f"Unknown state {state!r}; one of: {', '.join(states.ALL)}.")
                q = q.where(Job.state == state)
            jobs = list(s.scalars(q))
            latest = self._latest(s, [j.id for j in jobs])
            return [job_json(j, latest.get(j.id)) for j in jobs]

    def metrics_of(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        with self.sessions() as s:
            job = self.find(s, caller, owner, project, number)
            series: dict[str, list[dict]] = {}
            for name, step, value, ts in s.execute(
                select(JobMetric.name, JobMetric.step, JobMetric.value, JobMetric.ts)
                .where(JobMetric.job_id == job.id).order_by(JobMetric.id)
            ):
                series.setdefault(name, []).append({"step": step, "value": value, "ts": ts})
            return {"job": job_name(job), "series": series}

    def packages(self, caller: Caller, owner: str, project: str, number: int | str) -> list[str]:
        with self.sessions() as s:
            job = self.find(s, caller, owner, project, number)
            row = s.get(ImagePackages, job.image_id) if job.image_id else None
            return json.loads(row.packages) if row else []

    def job_by_token(self, token: str) -> Job | None:
        with self.sessions() as s:
            return s.scalar(select(Job).where(Job.token_hash == token_hash(token)))

    def report_metrics(self, job_id: int, items: object) -> int:
        if not isinstance(items, list) or len(items) > 10_000:
            raise BadRequest("'metrics' must be a list of {'metric', 'value', 'step'} (at most 10,000).")
        count = 0
        for item in items:
            parsed = parse_metric(json.dumps(item)) if isinstance(item, dict) else None
            if parsed is None:
                raise BadRequest(f"Invalid metric {item!r}: expected {{'metric': name, 'value': number, 'step': int}}.")
            self.metrics.add(job_id, *parsed)
            count += 1
        return count

    # -- the queue ------------------------------------------------------------------------
    def kick(self) -> None:
        """Start whatever can start now (called on submit, on every finish, on stop)."""
        if self.loop is not None and not self._closing:
            self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._schedule()))

    async def _schedule(self) -> None:
        async with self._schedule_lock:
            picked = await self.run(self._pick)
            for job_id in picked:
                self.running[job_id] = RunningJob(job_id, LogStore(self._log_path_by_id(job_id)))
                asyncio.ensure_future(self._run(job_id))

    def _log_path_by_id(self, job_id: int) -> Path:
        with self.sessions() as s:
            job = s.get(Job, job_id)
            assert job is not None
            return self.job_dir(job) / "logs" / "output.log"

    def _pick(self) -> list[int]:
        """Fair share: the user with the fewest active jobs goes next, and among equals the one
        whose last job started longest ago (round robin), then the oldest job; the global,
        per-user and per-sweep limits hold."""
        with self.sessions.begin() as s:
            active = list(s.execute(select(Job.owner, Job.group_id).where(Job.state.in_(states.ACTIVE))))
            per_user: dict[str, int] = {}
            per_group: dict[int, int] = {}
            for owner, group_id in active:
                per_user[owner] = per_user.get(owner, 0) + 1
                if group_id is not None:
                    per_group[group_id] = per_group.get(group_id, 0) + 1
            free = self.limits.max_running - len(active) if self.limits.max_running else 1 << 30
            gpus_free = len(self.gpus.devices) - (s.scalar(select(func.count()).select_from(GpuLease)) or 0)
            queued = list(s.scalars(select(Job).where(Job.state == states.QUEUED).order_by(Job.id)))
            limits = {g.id: g.concurrency for g in s.scalars(select(JobGroup).where(
                JobGroup.id.in_({j.group_id for j in queued if j.group_id is not None})))}
            picked: list[int] = []
            while free > 0 and queued:
                candidates = [
                    j for j in queued
                    if (not self.limits.max_running_per_user or per_user.get(j.owner, 0) < self.limits.max_running_per_user)
                    and (j.group_id is None or not limits.get(j.group_id) or per_group.get(j.group_id, 0) < limits[j.group_id])
                    and j.gpus <= gpus_free  # a GPU job waits for its GPUs instead of failing
                ]
                if not candidates:
                    break
                job = min(candidates, key=lambda j: (per_user.get(j.owner, 0), self._last_start.get(j.owner, 0.0), j.id))
                self._last_start[job.owner] = time.monotonic()
                queued.remove(job)
                job.state = states.STARTING
                job.reason = ""
                gpus_free -= job.gpus
                per_user[job.owner] = per_user.get(job.owner, 0) + 1
                if job.group_id is not None:
                    per_group[job.group_id] = per_group.get(job.group_id, 0) + 1
                picked.append(job.id)
                free -= 1
            for job in queued:
                job.reason = (f"waiting for {job.gpus} free GPU(s)" if job.gpus > gpus_free and free > 0
                              else self._why_waiting(job, per_user, per_group, limits, free))
            return picked

    def _why_waiting(self, job: Job, per_user: dict, per_group: dict, limits: dict, free: int) -> str:
        if free <= 0:
            return f"waiting: the platform runs at most {self.limits.max_running} jobs at once"
        if self.limits.max_running_per_user and per_user.get(job.owner, 0) >= self.limits.max_running_per_user:
            return f"waiting: at most {self.limits.max_running_per_user} running jobs per user"
        if job.group_id is not None and limits.get(job.group_id):
            return f"waiting: the sweep runs at most {limits[job.group_id]} at once"
        return "waiting for a free slot"

    # -- running one job ----------------------------------------------------------------
    async def _run(self, job_id: int) -> None:
        rj = self.running[job_id]
        try:
            spec = await self.run(self._prepare, job_id)
        except (FloydError, ExecutorError) as exc:
            await self._finish(job_id, states.FAILED, None, getattr(exc, "message", str(exc)))
            return
        except Exception as exc:
            log.exception("Preparing job %s failed", job_id)
            await self._finish(job_id, states.FAILED, None, f"internal error while preparing: {exc}")
            return
        rj.workdir = spec.workdir
        if rj.stop_reason:
            await self._finish(job_id, rj.stop_reason, None, "stopped before it started")
            return
        try:
            rj.handle = await self.run(self.executor.start, spec)
            if rj.stop_reason:  # a stop arrived while the container was being created
                await self.run(self.executor.stop, rj.handle, rj.workdir, 10)
        except ExecutorError as exc:
            await self._finish(job_id, states.FAILED, None, exc.message)
            return
        except Exception as exc:
            log.exception("Starting job %s failed", job_id)
            await self._finish(job_id, states.FAILED, None, f"the executor could not start it: {exc}")
            return
        await self.run(self._mark_running, job_id, rj.handle)
        await self._watch(rj, spec.workdir, skip_lines=0)

    def _prepare(self, job_id: int) -> RunSpec:
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            assert job is not None
            work = self.job_dir(job)
            code, output = work / "code", work / "output"
            snap = self.resolver.datasets.layout.version_dir(job.owner, job.project, self._snapshot_number(s, job),
                                                            "code")
            if code.exists():
                shutil.rmtree(code)
            shutil.copytree(snap, code, copy_function=shutil.copy2)
            output.mkdir(parents=True, exist_ok=True)
            for path in (code, output):
                os.chmod(path, 0o775)
                if os.geteuid() == 0:
                    for dirpath, _dirs, files in os.walk(path):
                        os.chown(dirpath, JOB_UID, JOB_GID)
                        os.chmod(dirpath, 0o775)
                        for f in files:
                            os.chown(os.path.join(dirpath, f), JOB_UID, JOB_GID)
                            os.chmod(os.path.join(dirpath, f), 0o664)
            devices = self.gpus.reserve(f"job:{job_name(job)}", job.owner, job.gpus) if job.gpus else []
            job.gpu_devices = json.dumps(devices)
            token = "fjt_" + secrets.token_urlsafe(24)
            job.token_hash = token_hash(token)
            image_id = job.image_id or self.executor.image_id(job.image)
            job.image_id = image_id
        self._capture_packages(job.image, image_id)
        # Per user and image: one user's cached packages never end up in another user's jobs.
        pip_cache = (self.layout.root / "cache" / "pip" / job.owner
                     / hashlib.sha256(image_id.encode()).hexdigest()[:16])
        pip_cache.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(pip_cache, JOB_UID, JOB_GID)
        mounts = [Mount(str(code), "/floyd/code", False), Mount(str(output), "/floyd/output", False),
                  Mount(str(pip_cache), "/floyd/cache/pip", False)]
        for item in json.loads(job.inputs):
            mounts.append(Mount(item["path"], f"/floyd/input/{item['mount']}", True))
        params = json.loads(job.params)
        if job.requirements_hash:  # floyd_requirements.txt: install (cached by hash) first
            argv = ["python", "-m", "floyd.job_entry"]
            argv += (["--notebook", job.notebook, "--params-json", json.dumps(params)] if job.notebook
                     else ["--command", job.command])
        elif job.notebook:
            argv = ["python", "-m", "floyd.notebook_runner", job.notebook, "--params-json", json.dumps(params)]
        else:  # nothing to set up: run the command as a plain `docker run` would
            argv = ["sh", "-c", job.command]
        env = {
            "FLOYD_JOB": job_name(job), "FLOYD_JOB_TOKEN": token, "FLOYD_URL": self.public_url,
            "FLOYD_PROJECT": f"{job.owner}/{job.project}", "FLOYD_CODE": "/floyd/code", "FLOYD_INPUT": "/floyd/input",
            "FLOYD_OUTPUT": "/floyd/output", "FLOYD_PIP_CACHE": "/floyd/cache/pip", "PYTHONUNBUFFERED": "1",
            **{f"FLOYD_PARAM_{k.upper()}": v for k, v in params.items()},
        }
        (work / "logs").mkdir(exist_ok=True)
        return RunSpec(job_id=job.id, name=job_name(job), image=job.image, argv=argv, env=env, mounts=mounts,
                       workdir=str(work), cpus=job.cpus, memory=job.memory, gpu_devices=devices,
                       labels={"org.floyd.owner": job.owner, "org.floyd.project": f"{job.owner}/{job.project}"})

    def _snapshot_number(self, s: Session, job: Job) -> int:
        return self.resolver.datasets.snapshot_number(s, job.owner, job.project, job.snapshot, "this job")

    def _capture_packages(self, image: str, image_id: str) -> None:
        with self.sessions() as s:
            if s.get(ImagePackages, image_id) is not None:
                return
        try:
            packages = self.executor.image_packages(image)
        except Exception as exc:  # the record lacks packages, the job still runs
            log.warning("Could not list the packages of %s: %s", image, exc)
            return
        with self.sessions.begin() as s:
            if s.get(ImagePackages, image_id) is None:
                s.add(ImagePackages(image_id=image_id, packages=json.dumps(packages)))

    def _mark_running(self, job_id: int, handle: str) -> None:
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            assert job is not None
            job.state = states.RUNNING
            job.handle = handle
            job.started_at = utcnow()

    async def _watch(self, rj: RunningJob, workdir: str, skip_lines: int) -> None:
        """Follow logs, enforce max runtime, sample system metrics, record the end."""
        assert self.loop is not None
        loop = self.loop
        job_id = rj.job_id
        with self.sessions() as s:
            job = s.get(Job, job_id)
            assert job is not None
            max_runtime, started = job.max_runtime, job.started_at

        def emit(lines: list[str]) -> None:
            for line in lines:
                parsed = parse_metric(line)
                if parsed:
                    self.metrics.add(job_id, *parsed)
            loop.call_soon_threadsafe(rj.logs.append, lines)

        log_task = watch(loop, self.executor.stream_logs, rj.handle, workdir, skip_lines, emit,
                                        lambda: self._closing)
        wait_task = watch(loop, self.executor.wait, rj.handle, workdir)
        timer = None
        if max_runtime:
            elapsed = (utcnow() - (started if started.tzinfo else started.replace(tzinfo=timezone.utc))).total_seconds() \
                if started else 0
            timer = loop.call_later(max(0.0, max_runtime - elapsed),
                                    lambda: asyncio.ensure_future(self._stop(rj, states.TIMED_OUT)))
        sampler = asyncio.ensure_future(self._sample(rj)) if self.limits.stats_interval else None
        try:
            code = await wait_task
            if self._closing:
                return
            await log_task
        finally:
            if timer:
                timer.cancel()
            if sampler:
                sampler.cancel()
        if self._closing:
            return
        await self.flush_metrics()
        if rj.stop_reason:
            state, reason = rj.stop_reason, ("stopped by request" if rj.stop_reason == states.STOPPED
                                             else f"ran past its max runtime of {max_runtime} s; output kept")
        elif code == 0:
            state, reason = states.SUCCEEDED, ""
        else:
            state, reason = states.FAILED, f"exited with code {code}"
        await self.run(self.executor.cleanup, rj.handle)
        await self._finish(job_id, state, code, reason)

    async def _sample(self, rj: RunningJob) -> None:
        """CPU and memory from the executor, GPU utilization from nvidia-smi where it exists."""
        with self.sessions() as s:
            job = s.get(Job, rj.job_id)
            devices = json.loads(job.gpu_devices) if job else []
        while True:
            await asyncio.sleep(self.limits.stats_interval)
            stats = await self.run(self.executor.system_stats, rj.handle)
            if devices:
                stats.update(await self.run(gpu_utilization, devices))
            for name, value in stats.items():
                self.metrics.add(rj.job_id, name, value, None)

    async def _finish(self, job_id: int, state: str, code: int | None, reason: str) -> None:
        rj = self.running.pop(job_id, None)
        await self.run(self._record_end, job_id, state, code, reason)
        if rj is not None:
            if reason and state != states.SUCCEEDED:
                rj.logs.append([f"[floyd] job {state}: {reason}"])
            rj.logs.finish()
            rj.done.set()
        self.kick()

    def _record_end(self, job_id: int, state: str, code: int | None, reason: str) -> None:
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            assert job is not None
            job.state = state
            job.exit_code = code
            job.reason = reason
            job.finished_at = utcnow()
            job.token_hash = ""  # the job's token dies with it
            name = job_name(job)
            output = self.job_dir(job) / "output"
        self.gpus.release(f"job:{name}")
        # Outputs are final once the job ended: make them read-only, so they can become a
        # dataset version by hardlink without copying bytes.
        if output.is_dir():
            for dirpath, _dirs, files in os.walk(output):
                for f in files:
                    p = os.path.join(dirpath, f)
                    if not os.path.islink(p):
                        os.chmod(p, 0o444)

    # -- stopping -----------------------------------------------------------------------
    async def stop(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        def lookup() -> tuple[int, str]:
            with self.sessions() as s:
                job = self.find(s, caller, owner, project, number)
                return job.id, job.state

        job_id, state = await self.run(lookup)
        if state in states.FINISHED:
            raise Conflict(f"Job {owner}/{project}/{number} has already ended ({state}).")
        if state == states.QUEUED and await self.run(self._stop_queued, job_id):
            self.kick()
        else:
            rj = self.running.get(job_id)
            if rj is not None:
                await self._stop(rj, states.STOPPED)
        return await self.run(self.get, caller, owner, project, number)

    def _stop_queued(self, job_id: int) -> bool:
        """Stop a job that has not been picked yet; False when the scheduler got it first."""
        with self.sessions.begin() as s:
            done = s.execute(
                update(Job).where(Job.id == job_id, Job.state == states.QUEUED)
                .values(state=states.STOPPED, reason="stopped before it started", finished_at=utcnow())
            ).rowcount
        return bool(done)

    async def _stop(self, rj: RunningJob, reason: str) -> None:
        if rj.stop_reason:
            return
        rj.stop_reason = reason
        if rj.handle:
            await self.run(self.executor.stop, rj.handle, rj.workdir, 10)
        await rj.done.wait()

    # -- metrics batching, start-up and shutdown ---------------------------------------------
    async def flush_metrics(self) -> None:
        rows = self.metrics.take()
        if rows:
            await self.run(self._insert_metrics, rows)

    def _insert_metrics(self, rows: list[dict]) -> None:
        with self.sessions.begin() as s:
            s.execute(insert(JobMetric), rows)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.recover()
        asyncio.ensure_future(self._flush_loop())
        self.kick()

    async def _flush_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(0.5)
            try:
                await self.flush_metrics()
            except Exception:
                log.exception("Writing metrics failed")

    async def recover(self) -> None:
        """Take back the jobs a previous bridge left running; record the ones that ended or vanished."""
        found = {f.job_id: f for f in await self.run(lambda: list(self.executor.find()))}
        with self.sessions() as s:
            active = [(j.id, j.state, j.handle, str(self.job_dir(j))) for j in
                      s.scalars(select(Job).where(Job.state.in_(states.ACTIVE)))]
        for job_id, state, handle, workdir in active:
            f = found.get(job_id)
            if f is None or (state == states.STARTING and not handle):
                if f is not None:
                    await self.run(self.executor.cleanup, f.handle)
                await self.run(self._record_end, job_id, states.LOST,
                               None, "the bridge restarted and its container was gone" if f is None
                               else "the bridge restarted while the job was starting")
                continue
            logs = LogStore(Path(workdir) / "logs" / "output.log")
            rj = RunningJob(job_id, logs)
            rj.handle = f.handle
            rj.workdir = workdir
            self.running[job_id] = rj
            log.info("Re-attached job %s (%s lines already logged)", job_id, logs.count)
            asyncio.ensure_future(self._watch(rj, workdir, skip_lines=logs.count))

    async def close(self) -> None:
        self._closing = True
        await self.flush_metrics()
        for rj in self.running.values():
            if not rj.logs.complete:
                rj.logs._file.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
