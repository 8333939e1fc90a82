"""Getting one picked job ready to start: its own copy of the code, its output directory (both
the container user's), its GPUs, its token, its image's package list, and its RunSpec.

The RunSpec is the contract's (executors/contract.py ``job_spec``): nothing here decides mounts,
environment or the user a job runs as."""

from __future__ import annotations

import json
import shutil

from sqlalchemy.orm import Session, sessionmaker
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.tokens import new_token, token_hash
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.executors.base import Executor
from jobs_bridge.executors.contract import JobRun, RunSpec, give_to_container_user, job_spec
from jobs_bridge.jobs.records import job_name
from jobs_bridge.orm import ImagePackages, Job
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.storage.paths import StorageLayout

DIR_MODE, FILE_MODE = 0o775, 0o664  # the container user and its group write code/ and output/


class JobPreparer(LoggingConfigurable):
    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, datasets: DatasetManager,
                 gpus: GpuAllocator, executor: Executor, public_url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.datasets = datasets
        self.gpus = gpus
        self.executor = executor
        self.public_url = public_url

    def prepare(self, job_id: int) -> RunSpec:
        """Blocking (a thread). Raises FloydError / ExecutorError with a message for the user."""
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            assert job is not None
            self._copy_code(s, job)
            devices = self.gpus.reserve(f"job:{job_name(job)}", job.owner, job.gpus) if job.gpus else []
            job.gpu_devices = json.dumps(devices)
            token = new_token()
            job.token_hash = token_hash(token)
            job.image_id = job.image_id or self.executor.image_id(job.image)
            run = JobRun(job_id=job.id, owner=job.owner, project=job.project, number=job.number, image=job.image,
                         image_id=job.image_id, command=job.command, notebook=job.notebook,
                         params=json.loads(job.params), requirements=bool(job.requirements_hash),
                         inputs=json.loads(job.inputs), token=token, cpus=job.cpus, memory=job.memory,
                         gpu_devices=devices)
        self._capture_packages(run.image, run.image_id)
        self.layout.job_log(run.owner, run.project, run.number).parent.mkdir(parents=True, exist_ok=True)
        return job_spec(self.layout, run, self.public_url)

    def _copy_code(self, s: Session, job: Job) -> None:
        """The job's own copy of its snapshot (it may write there) and an empty output."""
        number = self.datasets.snapshot_number(s, job.owner, job.project, job.snapshot, "this job")
        snapshot = self.layout.version_dir(job.owner, job.project, number, "code")
        code = self.layout.job_code(job.owner, job.project, job.number)
        output = self.layout.job_output(job.owner, job.project, job.number)
        if code.exists():
            shutil.rmtree(code)
        shutil.copytree(snapshot, code, copy_function=shutil.copy2)
        output.mkdir(parents=True, exist_ok=True)
        for path in (code, output):
            give_to_container_user(path, recursive=True, file_mode=FILE_MODE, dir_mode=DIR_MODE)

    def _capture_packages(self, image: str, image_id: str) -> None:
        """The image's package list, once per image id, for the job's record."""
        with self.sessions() as s:
            if s.get(ImagePackages, image_id) is not None:
                return
        try:
            packages = self.executor.image_packages(image)
        except Exception as exc:  # the record lacks packages, the job still runs
            self.log.warning("Could not list the packages of %s: %s", image, exc)
            return
        with self.sessions.begin() as s:
            if s.get(ImagePackages, image_id) is None:
                s.add(ImagePackages(image_id=image_id, packages=json.dumps(packages)))
