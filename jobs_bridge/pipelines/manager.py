"""PipelineManager: what the handlers and the app call about pipelines.

A run is stored whole (its steps checked as a DAG and each step as a job request) before
anything starts; from then on one worker thread moves runs forward (pipelines/stepper.py),
woken when a run is made or stopped and when one of its jobs ends. Jobs go through the job
queue like any other, so a user's queue limits hold for pipeline steps too.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets.uploads import UploadManager
from jobs_bridge.errors import BadRequest, Conflict, FloydError, NotFound
from jobs_bridge.jobs.manager import JobManager
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import Job, PipelineRun, PipelineStep
from jobs_bridge.pipelines import records as r
from jobs_bridge.pipelines.graph import StepSpec, parse_steps
from jobs_bridge.pipelines.stepper import RunView, Stepper
from jobs_bridge.projects import ProjectManager
from jobs_bridge.registry.manager import ModelManager
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.validate import id_number, json_bool, only_keys

KNOWN_KEYS = ("no_reuse", "pipeline", "project", "save_models", "save_outputs", "snapshot", "steps")


class PipelineManager(LoggingConfigurable):
    max_steps = Integer(
        100, help="Most steps one pipeline may have (default 100); a bigger one is refused with 400.",
    ).tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, jobs: JobManager,
                 uploads: UploadManager, models: ModelManager, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.jobs = jobs
        self.stepper = Stepper(sessions, layout, jobs, uploads, models)
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="pipelines")
        self._number_lock = threading.Lock()
        jobs.ended_listeners.append(self.job_ended)

    # -- making a run (blocking: a handler's thread) ------------------------------------------------
    def check(self, caller: Caller, body: dict) -> dict:
        """The run request ``body`` checked whole as ``caller`` (4xx for a bad one), in the form a run
        is made from; nothing is stored. A pipeline schedule stores this form and submits it later."""
        only_keys(body, KNOWN_KEYS)
        name = check_name(body.get("pipeline"), "pipeline name")
        order = parse_steps(body.get("steps"), self.max_steps)
        no_reuse = json_bool(body.get("no_reuse", False), "no_reuse")
        steps = {s.name for s in order}
        saves = self._saves(body.get("save_outputs") or {}, steps, "save_outputs", "dataset", "clean")
        models = self._saves(body.get("save_models") or {}, steps, "save_models", "model", "mnist-cnn")
        project = body.get("project")
        if not isinstance(project, str) or "/" not in project:
            raise BadRequest("'project' must be OWNER/NAME, e.g. 'alice/mnist-cnn'.")
        if not isinstance(body.get("snapshot"), str) or not body["snapshot"]:
            raise BadRequest("'snapshot' must be the id of the project's code snapshot (floyd pipeline run uploads it).")
        owner, _, pname = project.partition("/")
        self._check_steps(caller, owner, pname, body["snapshot"], name, order)
        return {"project": project, "pipeline": name, "steps": body["steps"], "no_reuse": no_reuse,
                "snapshot": body["snapshot"], "save_outputs": saves, "save_models": models}

    def submit(self, caller: Caller, body: dict) -> dict:
        """Check the whole pipeline as ``caller``, store the run, and let the worker start it."""
        req = self.check(caller, body)
        owner, _, pname = req["project"].partition("/")
        order = parse_steps(req["steps"], self.max_steps)
        spec = {"steps": req["steps"], "save_outputs": req["save_outputs"], "save_models": req["save_models"]}
        with self._number_lock, self.sessions.begin() as s:
            number = (s.scalar(select(func.max(PipelineRun.number)).where(
                PipelineRun.owner == owner, PipelineRun.project == pname)) or 0) + 1
            run = PipelineRun(owner=owner, project=pname, number=number, name=req["pipeline"],
                              state=r.RUN_RUNNING, snapshot=req["snapshot"], no_reuse=req["no_reuse"],
                              spec=json.dumps(spec), created_by=caller.name)
            run.steps = [PipelineStep(name=st.name, position=i, state=r.WAITING, needs=json.dumps(st.needs))
                         for i, st in enumerate(order)]
            s.add(run)
            s.flush()
            run_id, record = run.id, r.run_json(run, {})
        self.wake(run_id)
        return record

    @staticmethod
    def _saves(raw: object, steps: set[str], key: str, kind: str, example: str) -> dict[str, str]:
        """``save_outputs`` (step → dataset) or ``save_models`` (step → model): names checked."""
        if not isinstance(raw, dict):
            raise BadRequest(f"'{key}' must be an object of step → {kind} name, e.g. {{\"prepare\": \"{example}\"}}.")
        for step, target in raw.items():
            if step not in steps:
                raise BadRequest(f"{key}: no step {step!r} in the pipeline (steps: {', '.join(sorted(steps))}).")
            check_name(target, f"{kind} name for step {step}'s output")
        return dict(raw)

    def _check_steps(self, caller: Caller, owner: str, project: str, snapshot: object, name: str,
                     order: list[StepSpec]) -> None:
        """Each step as the job request it will be (upstream outputs left out: they do not exist yet)."""
        with self.sessions() as s:
            ProjectManager.find(s, caller, check_owner(owner), check_name(project, "project name"), write=True)
            view = RunView(0, owner, project, 0, name, str(snapshot), False, {}, {}, {}, {})
            for step in order:
                body = {**self.stepper.job_body(view, StepSpec(step.name, step.job, step.datasets)),
                        "snapshot": snapshot}
                try:
                    self.jobs.resolver.resolve(s, caller, body)
                except FloydError as exc:
                    raise type(exc)(f"steps.{step.name}: {exc.message}", log_message=exc.log_message) from None

    # -- reading ----------------------------------------------------------------------------------
    def _find(self, s: Session, caller: Caller, owner: str, project: str, number: int | str) -> PipelineRun:
        n = id_number(number, "pipeline run number", "use the run's number, e.g. 3.")
        run = s.scalar(select(PipelineRun).where(PipelineRun.owner == owner, PipelineRun.project == project,
                                                 PipelineRun.number == n))
        if run is None or not (caller.admin or caller.name == owner):
            raise NotFound(f"Pipeline run {owner}/{project}/{n} not found.")
        return run

    @staticmethod
    def _json(s: Session, run: PipelineRun) -> dict:
        ids = [st.job_id for st in run.steps if st.job_id is not None]
        jobs = {j.id: j for j in s.scalars(select(Job).where(Job.id.in_(ids)))} if ids else {}
        return r.run_json(run, jobs)

    def get(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        with self.sessions() as s:
            return self._json(s, self._find(s, caller, owner, project, number))

    def list(self, caller: Caller, project: str | None, limit: int = 50) -> builtins.list[dict]:
        """The caller's runs, newest first (of one project when ``project`` is given)."""
        with self.sessions() as s:
            q = select(PipelineRun).where(PipelineRun.owner == caller.name)
            if project:
                q = q.where(PipelineRun.project == check_name(project, "project name"))
            return [self._json(s, run) for run in s.scalars(q.order_by(PipelineRun.id.desc()).limit(limit))]

    # -- stopping and moving on -----------------------------------------------------------------
    async def stop(self, caller: Caller, owner: str, project: str, number: int | str) -> dict:
        """Steps not started are skipped; running steps' jobs are stopped; the run ends ``stopped``."""
        def skip_waiting() -> tuple[int, builtins.list[int]]:
            with self.sessions.begin() as s:
                run = self._find(s, caller, owner, project, number)
                if run.state in r.RUN_FINISHED:
                    raise Conflict(f"Pipeline run {r.run_name(run)} has already ended ({run.state}).")
                for st in run.steps:
                    if st.state == r.WAITING:
                        st.state, st.reason = r.SKIPPED, "pipeline stopped"
                running = [st.job_id for st in run.steps if st.state == r.RUNNING and st.job_id is not None]
                jobs = s.scalars(select(Job).where(Job.id.in_(running))).all()
                return run.id, [j.number for j in jobs]

        # On the worker: no pass is between deciding to start a step and recording its job.
        run_id, numbers = await asyncio.wrap_future(self.worker.submit(skip_waiting))
        for n in numbers:
            try:
                await self.jobs.stop(caller, owner, project, n)
            except Conflict:  # it ended meanwhile
                pass
        await asyncio.wrap_future(self.worker.submit(self.stepper.advance, run_id))
        return await self.jobs.offload(self.get, caller, owner, project, number)

    def wake(self, run_id: int) -> None:
        """Let the worker move ``run_id`` on (safe from any thread)."""
        self.worker.submit(self._advance, run_id)

    def _advance(self, run_id: int) -> None:
        try:
            self.stepper.advance(run_id)
        except Exception:
            self.log.exception("Moving pipeline run %s on failed; its next job end tries again", run_id)

    def job_ended(self, job_id: int) -> None:
        """A job ended: move on the run whose step it was (looked up on the worker, after any
        pass that is still recording the step's job)."""
        self.worker.submit(self._job_ended, job_id)

    def _job_ended(self, job_id: int) -> None:
        with self.sessions() as s:
            runs = set(s.scalars(select(PipelineStep.run_id).where(PipelineStep.job_id == job_id,
                                                                   PipelineStep.state == r.RUNNING)))
        for run_id in runs:
            self._advance(run_id)

    def start(self) -> None:
        """After a restart: runs whose jobs ended while the bridge was down move on."""
        with self.sessions() as s:
            for run_id in s.scalars(select(PipelineRun.id).where(PipelineRun.state == r.RUN_RUNNING)):
                self.wake(run_id)

    def close(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)
