"""Moving a pipeline run forward: steps whose inputs exist start (or are reused), steps whose
upstream failed are skipped, finished jobs become finished steps, outputs become datasets.

All of it runs on one worker thread (``PipelineManager``'s), one pass after another until a
pass changes nothing, so two passes never decide about the same step at once. A pass reads and
writes the database in short transactions and submits jobs between them: the job queue opens
transactions of its own, and SQLite has one writer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets import layers
from jobs_bridge.datasets.uploads import UploadManager
from jobs_bridge.errors import FloydError, NotFound
from jobs_bridge.jobs import states as job_states
from jobs_bridge.jobs.manager import JobManager
from jobs_bridge.orm import DatasetVersion, Job, PipelineRun, PipelineStep
from jobs_bridge.pipelines import records as r
from jobs_bridge.pipelines.graph import StepSpec, parse_steps
from jobs_bridge.pipelines.reuse import code_hash, reuse_key, tree_hash
from jobs_bridge.registry.manager import ModelManager
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.timeutil import utcnow

log = logging.getLogger(__name__)
ANY_SIZE = 1_000_000  # a stored run was checked against the limit when it was made


@dataclass
class RunView:
    """What a pass needs of a run outside its transaction."""

    id: int
    owner: str
    project: str
    number: int
    name: str
    snapshot: str
    no_reuse: bool
    steps: dict[str, StepSpec]
    save_outputs: dict[str, str]
    save_models: dict[str, str]
    outputs: dict[str, int]  # step → the job number whose output stands for it


def _ended_job_state(job: Job) -> tuple[str, str]:
    if job.state == job_states.SUCCEEDED:
        return r.SUCCEEDED, ""
    if job.state == job_states.STOPPED:
        return r.STOPPED, job.reason or "stopped"
    return r.FAILED, job.reason or f"job {job.state}"


class Stepper:
    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, jobs: JobManager,
                 uploads: UploadManager, models: ModelManager) -> None:
        self.sessions = sessions
        self.layout = layout
        self.jobs = jobs
        self.uploads = uploads
        self.models = models
        self._trees: dict[str, str] = {}  # content hashes of finished outputs (they never change)
        self._images: dict[str, str] = {}  # image ids, asked of the engine once per advance()
        self._files: dict[str, dict[str, str]] = {}  # a snapshot's {path: hash}, read once per advance()
        self._parsed: dict[int, dict[str, StepSpec]] = {}  # a run's steps, parsed once per advance()

    def advance(self, run_id: int) -> None:
        """Passes over the run until nothing changes (worker thread only)."""
        self._images.clear()  # a tag may point to a new image by the next time
        self._files.clear()
        self._parsed.clear()
        for _ in range(ANY_SIZE):
            if not self._pass(run_id):
                return

    def _pass(self, run_id: int) -> bool:
        with self.sessions.begin() as s:
            run = s.get(PipelineRun, run_id)
            if run is None or run.state in r.RUN_FINISHED:
                return False
            changed = self._sync(s, run)
            view = self._view(s, run)
            by_name = {st.name: st for st in run.steps}
            ready = [st.name for st in run.steps if st.state == r.WAITING
                     and all(by_name[n].state in r.DONE for n in json.loads(st.needs))]
            saves = [st.name for st in run.steps if st.state in r.DONE and st.name in view.save_outputs
                     and not st.saved_as]
            models = [st.name for st in run.steps if st.state in r.DONE and st.name in view.save_models
                      and not st.model_saved_as]
            if not ready and not saves and not models and all(st.state in r.ENDED for st in run.steps):
                self._finish(run)
                return False
        for name in saves:
            self._save(view, name)
        for name in models:
            self._save_model(view, name)
        for name in ready:
            self._start(view, name)
        return changed or bool(ready) or bool(saves) or bool(models)

    @staticmethod
    def _sync(s: Session, run: PipelineRun) -> bool:
        """Finished jobs → finished steps; a step after a failed or stopped one → skipped."""
        changed = False
        by_name = {st.name: st for st in run.steps}
        for st in run.steps:  # in topological order: a skip reaches every descendant in one go
            if st.state == r.RUNNING:
                job = s.get(Job, st.job_id) if st.job_id is not None else None
                if job is None:
                    st.state, st.reason, changed = r.FAILED, "its job was deleted", True
                elif job.state in job_states.FINISHED:
                    (st.state, st.reason), changed = _ended_job_state(job), True
            elif st.state == r.WAITING:
                bad = [n for n in json.loads(st.needs) if by_name[n].state in (r.FAILED, r.STOPPED, r.SKIPPED)]
                if bad:
                    st.state, st.reason, changed = r.SKIPPED, f"upstream failed ({', '.join(bad)})", True
        return changed

    def _view(self, s: Session, run: PipelineRun) -> RunView:
        spec = json.loads(run.spec)
        done = {st.job_id: st.name for st in run.steps if st.state in r.DONE and st.job_id is not None}
        numbers = {done[i]: n for i, n in s.execute(select(Job.id, Job.number).where(Job.id.in_(done)))} if done else {}
        if run.id not in self._parsed:
            self._parsed[run.id] = {st.name: st for st in parse_steps(spec["steps"], ANY_SIZE)}
        return RunView(run.id, run.owner, run.project, run.number, run.name, run.snapshot, run.no_reuse,
                       self._parsed[run.id], spec.get("save_outputs", {}), spec.get("save_models", {}), numbers)

    @staticmethod
    def _finish(run: PipelineRun) -> None:
        ended = {st.state for st in run.steps}
        if r.STOPPED in ended or any(st.reason == "pipeline stopped" for st in run.steps):
            run.state = "stopped"
        elif ended & {r.FAILED, r.SKIPPED}:
            run.state = "failed"
        else:
            run.state = "succeeded"
        run.finished_at = utcnow()

    def _write(self, run_id: int, name: str, **values: object) -> None:
        with self.sessions.begin() as s:
            st = s.scalar(select(PipelineStep).where(PipelineStep.run_id == run_id, PipelineStep.name == name))
            if st is not None:
                for k, v in values.items():
                    setattr(st, k, v)

    # -- starting a step -------------------------------------------------------------------------
    def job_body(self, view: RunView, step: StepSpec) -> dict:
        """The job request of ``step``: its fields, its datasets and its upstream outputs."""
        upstream = [{"source": f"{view.owner}/{view.project}/{view.outputs[u.step]}/output"
                     + (f"/{u.path}" if u.path else ""), "mount": u.mount} for u in step.upstream]
        return {**step.job, "project": f"{view.owner}/{view.project}", "snapshot": view.snapshot,
                "inputs": [*step.datasets, *upstream], "task": step.name,
                "message": f"pipeline {view.name} run {view.number}, step {step.name}"}

    def _start(self, view: RunView, name: str) -> None:
        step = view.steps[name]
        caller = Caller(view.owner)
        body = self.job_body(view, step)
        try:
            key, earlier = self._key(caller, body, step.code, view.no_reuse)
            if earlier is not None:
                self._write(view.id, name, state=r.REUSED, job_id=earlier[0], reused=True, cache_key=key,
                            reason=f"reused from job {earlier[1]}")
                return
            result = self.jobs.submit(caller, body)["job"]
            with self.sessions() as s:
                job_id = s.scalar(select(Job.id).where(Job.owner == view.owner, Job.project == view.project,
                                                       Job.number == result["number"]))
            self._write(view.id, name, state=r.RUNNING, job_id=job_id, cache_key=key, reason="")
        except FloydError as exc:
            self._write(view.id, name, state=r.FAILED, reason=exc.message)
        except Exception as exc:  # a bug or the platform: the step fails, the bridge goes on
            log.exception("Starting step %s of pipeline run %s failed", name, view.id)
            self._write(view.id, name, state=r.FAILED, reason=f"could not start: {exc}")

    def _key(self, caller: Caller, body: dict, code: list[str], no_reuse: bool) -> tuple[str, tuple[int, int] | None]:
        """The step's reuse key, and the earlier job it may reuse (None with ``no_reuse``)."""
        with self.sessions() as s:
            spec = self.jobs.resolver.resolve(s, caller, body)
            if spec.snapshot not in self._files:
                self._files[spec.snapshot] = self._snapshot_files(s, spec.owner, spec.project, spec.snapshot)
            inputs = sorted((i.mount, i.version_id or self._tree(i.path)) for i in spec.inputs)
            key = reuse_key({"code": code_hash(self._files[spec.snapshot], code), "inputs": inputs,
                             "params": spec.params, "command": spec.command, "notebook": spec.notebook,
                             "image_id": self._image_id(spec.env.image), "requirements": spec.requirements_hash})
            return key, None if no_reuse else self._earlier(s, spec.owner, key)

    def _image_id(self, image: str) -> str:
        if image not in self._images:
            self._images[image] = self.jobs.executor.image_id(image)
        return self._images[image]

    def _snapshot_files(self, s: Session, owner: str, project: str, snapshot: str) -> dict[str, str]:
        ds = self.jobs.resolver.datasets.code_dataset(s, owner, project)
        pk = s.scalar(select(DatasetVersion.id).where(DatasetVersion.dataset_id == ds.id,
                                                      DatasetVersion.version_id == snapshot).limit(1))
        return layers.file_map(s, layers.by_pk(s, pk)) if pk is not None else {}

    def _tree(self, path: str) -> str:
        if path not in self._trees:
            self._trees[path] = tree_hash(Path(path))
        return self._trees[path]

    def _earlier(self, s: Session, owner: str, key: str) -> tuple[int, int] | None:
        """The newest succeeded job of ``owner`` whose step had ``key``, if its output is still there."""
        row = s.execute(
            select(Job.id, Job.number, Job.project).join(PipelineStep, PipelineStep.job_id == Job.id)
            .join(PipelineRun, PipelineRun.id == PipelineStep.run_id)
            .where(PipelineStep.cache_key == key, PipelineRun.owner == owner,
                   PipelineStep.state.in_(r.DONE), Job.state == job_states.SUCCEEDED)
            .order_by(Job.id.desc()).limit(1)).first()
        if row is None or not self.layout.job_output(owner, row.project, row.number).is_dir():
            return None
        return row.id, row.number

    # -- saving an output ------------------------------------------------------------------------
    def _save(self, view: RunView, name: str) -> None:
        """The step's output becomes a version of the dataset ``--save-output`` named (made if missing)."""
        dataset = view.save_outputs[name]
        caller = Caller(view.owner)
        job = f"{view.owner}/{view.project}/{view.outputs[name]}"
        try:
            try:
                with self.sessions() as s:
                    self.jobs.resolver.datasets.find(s, caller, view.owner, dataset, write=True)
            except NotFound:
                self.jobs.resolver.datasets.create(caller, dataset, f"outputs of pipeline {view.name}")
            version = self.uploads.from_job_output(caller, view.owner, dataset, job,
                                                   f"step {name} of pipeline {view.name} run {view.number}")
            self._write(view.id, name, saved_as=version["ref"])
        except FloydError as exc:
            self._write(view.id, name, saved_as=f"not saved: {exc.message}"[:255])

    def _save_model(self, view: RunView, name: str) -> None:
        """The step's output becomes a version of the model ``--save-model`` named, through the
        registry (no bytes copied; the version's source is the step's job)."""
        job = f"{view.owner}/{view.project}/{view.outputs[name]}"
        about = f"step {name} of pipeline {view.name} run {view.number}"
        try:
            version = self.models.register(Caller(view.owner), view.owner, view.save_models[name],
                                           {"from": job, "description": about})
            self._write(view.id, name, model_saved_as=version["ref"])
        except FloydError as exc:
            self._write(view.id, name, model_saved_as=f"not saved: {exc.message}"[:255])
