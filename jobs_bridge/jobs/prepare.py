"""Getting one picked job ready to start: its code (the snapshot mounted with a writable layer,
else cloned or copied: jobs/code.py), its output directory (the container user's), its GPUs,
its token, its image's package list, and its RunSpec.

The RunSpec is the contract's (executors/contract.py ``job_spec``): nothing here decides mounts,
environment or the user a job runs as."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Enum
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.tokens import new_token, token_hash
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.executors.base import EngineUnavailable, Executor
from jobs_bridge.executors.contract import JobRun, RunSpec, give_to_container_user, job_spec
from jobs_bridge.jobs.code import DIR_MODE, MODES, CodeMounter
from jobs_bridge.jobs.records import job_name
from jobs_bridge.orm import ImagePackages, Job
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.storage import overlay
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.storage.trees import TREES


class JobPreparer(LoggingConfigurable):
    code_mount = Enum(
        ["auto", *MODES], "auto", config=True,
        help="""How a job gets its writable /floyd/code from its snapshot: 'overlay' (the snapshot
        mounted read-only under a writable layer: nothing copied; needs root and a Docker engine
        in the bridge's mount namespace), 'reflink' (cp --reflink=always: XFS, Btrfs), 'copy'.
        'auto' (default) takes the first that works here; a mode that does not work falls back
        to the next. The job's record says which one it got (code_mount).""",
    )

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, datasets: DatasetManager,
                 gpus: GpuAllocator, executor: Executor, public_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.datasets = datasets
        self.gpus = gpus
        self.executor = executor
        self.public_url = public_url
        self.mounter = CodeMounter(layout.tmp, executor.sees_bridge_mounts(), layout.snapshots, layout.code_dirs)
        # Jobs are prepared in parallel threads: the first of them to meet a new image lists its
        # packages, the others wait for that row instead of listing again and inserting a duplicate
        # (one lock per image id, so a slow listing does not hold up jobs on other images).
        self._packages_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Image ids whose listing failed for good (an image without python): not tried again on
        # every job, which cost a container run each time.
        self._unlistable: set[str] = set()

    def prepare(self, job_id: int) -> RunSpec:
        """Blocking (a thread). Raises FloydError / ExecutorError with a message for the user."""
        t0 = time.perf_counter()
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            assert job is not None
            job.code_mount = mode = self._provide_code(s, job)
            devices = self.gpus.reserve(f"job:{job_name(job)}", job.owner, job.gpus) if job.gpus else []
            job.gpu_devices = json.dumps(devices)
            token = new_token()
            job.token_hash = token_hash(token)
            job.image_id = job.image_id or self.executor.image_id(job.image)
            run = JobRun(job_id=job.id, owner=job.owner, project=job.project, number=job.number, image=job.image,
                         image_id=job.image_id, command=job.command, notebook=job.notebook,
                         params=json.loads(job.params), requirements=bool(job.requirements_hash),
                         inputs=json.loads(job.inputs), token=token, cpus=job.cpus, memory=job.memory,
                         gpu_devices=devices, environment=job.environment)
        self._capture_packages(run.image, run.image_id)
        self.layout.job_log(run.owner, run.project, run.number).parent.mkdir(parents=True, exist_ok=True)
        spec = job_spec(self.layout, run, self.public_url)
        TREES.ready_all(m.source for m in spec.mounts)  # a version committed just now: its tree may be building
        self.log.info("Prepared job %s in %.1f ms (code by %s)", run.name, (time.perf_counter() - t0) * 1000, mode)
        return spec

    def _snapshot_dir(self, s: Session, job: Job) -> Path:
        number = self.datasets.snapshot_number(s, job.owner, job.project, job.snapshot, "this job")
        path = self.layout.version_dir(job.owner, job.project, number, "code")
        TREES.ready(path)
        return path

    def _provide_code(self, s: Session, job: Job) -> str:
        """The job's writable view of its snapshot and an empty output; returns the code mode."""
        code = self.layout.job_code(job.owner, job.project, job.number)
        wanted = MODES[0] if self.code_mount == "auto" else self.code_mount
        mode = self.mounter.provide(wanted, self._snapshot_dir(s, job), code)
        output = self.layout.job_output(job.owner, job.project, job.number)
        output.mkdir(parents=True, exist_ok=True)
        give_to_container_user(output, dir_mode=DIR_MODE)
        return mode

    def release_code(self, job_id: int) -> bool:
        """Blocking. Unmount an ended job's overlay and fold its writes into code/ (a no-op for
        the other modes); also for jobs a crashed bridge left mounted."""
        with self.sessions() as s:
            job = s.get(Job, job_id)
            if job is None or job.code_mount != "overlay":
                return False
            code = self.layout.job_code(job.owner, job.project, job.number)
            snapshot = self._snapshot_dir(s, job)
        return self.mounter.release(snapshot, code)

    def release_leftovers(self, keep: set[int]) -> int:
        """Blocking. After a restart: release the overlays of jobs not in ``keep`` (the running
        ones) that a previous bridge left mounted (it died) or not folded back (a reboot)."""
        jobs = self.layout.jobs.resolve()  # as mountinfo names them
        dirs = {p for p in overlay.overlay_mounts(jobs) if p.name == "code"}
        dirs |= {p.with_name("code") for p in jobs.glob("*/*/*/.code")}
        released = 0
        for code in sorted(dirs):
            owner, project, number = code.relative_to(jobs).parts[:3]
            with self.sessions() as s:
                job_id = s.scalar(select(Job.id).where(Job.owner == owner, Job.project == project,
                                                       Job.number == int(number)))
            if job_id is None:
                released += overlay.unmount(code)
            elif job_id not in keep:
                released += self.release_code(job_id)
        return released

    def _capture_packages(self, image: str, image_id: str) -> None:
        """The image's package list, once per image id, for the job's record."""
        if image_id in self._unlistable or self._has_packages(image_id):
            return
        with self._locks_guard:
            lock = self._packages_locks.setdefault(image_id, threading.Lock())
        with lock:
            if image_id in self._unlistable or self._has_packages(image_id):  # another job got there first
                return
            try:
                packages = self.executor.image_packages(image)
            except EngineUnavailable as exc:  # the engine's moment, not the image's: the next job tries again
                self.log.warning("Could not list the packages of %s: %s", image, exc)
                return
            except Exception as exc:  # the record lacks packages, the job still runs
                self.log.warning("Could not list the packages of %s (%s); not trying again for image %s",
                                 image, exc, image_id[:19])
                self._unlistable.add(image_id)
                return
            with self.sessions.begin() as s:
                s.add(ImagePackages(image_id=image_id, packages=json.dumps(packages)))

    def _has_packages(self, image_id: str) -> bool:
        with self.sessions() as s:
            return s.get(ImagePackages, image_id) is not None
