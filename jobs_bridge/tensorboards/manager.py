"""The TensorBoardManager: one TensorBoard per owner and set of jobs, started on demand through
the job executor (a container of the first job's environment image, or a local process), each
job's output mounted read-only, stopped after ``idle_timeout`` without a request.

TensorBoards are not kept in the database: they hold no state of their own, and opening one
again starts it again. A handle file in the TensorBoard's directory lets the next bridge stop
one a crash left running.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.auth.rules import check_access
from jobs_bridge.errors import BadRequest, NotFound, Unavailable
from jobs_bridge.executors.base import Executor, ExecutorError
from jobs_bridge.executors.contract import TensorBoardRun, tensorboard_spec
from jobs_bridge.inputs import find_job
from jobs_bridge.names import shown
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.validate import only_keys

READY_POLL = 0.5  # seconds between looks at a starting TensorBoard


@dataclass
class LiveBoard:
    owner: str
    tb_id: str
    jobs: list[str]
    workdir: str
    connect: str = ""
    port: int = 0
    handle: str = ""
    last_used: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set once it answers, or failed
    failed: str = ""  # why it could not start (for whoever waited on it meanwhile)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TensorBoardManager(LoggingConfigurable):
    idle_timeout = Float(
        900, help="Seconds without a request after which a TensorBoard is stopped (opening it again starts it "
        "again). Default: 900.").tag(config=True)
    start_timeout = Float(
        90, help="Seconds a TensorBoard may take to answer once started; later, opening it answers 503. Default: 90."
    ).tag(config=True)
    max_jobs = Integer(20, help="Most jobs in one TensorBoard. Default: 20.").tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], layout: StorageLayout, executor: Executor,
                 service_prefix: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.executor = executor
        self.prefix = service_prefix.rstrip("/") + "/tensorboards"
        self.boards: dict[str, LiveBoard] = {}
        self._task: asyncio.Future[None] | None = None

    def url_of(self, board: LiveBoard) -> str:
        return f"{self.prefix}/{board.owner}/{board.tb_id}/"

    def record(self, board: LiveBoard) -> dict:
        return {"owner": board.owner, "id": board.tb_id, "jobs": board.jobs, "url": self.url_of(board),
                "state": "running" if board.ready.is_set() and not board.failed else "starting"}

    def resolve(self, caller: Caller, body: dict) -> tuple[TensorBoardRun, list[str]]:
        """The jobs checked as the caller (another user's private job: 404), as a run to start."""
        only_keys(body, ("jobs",))
        names = body.get("jobs")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise BadRequest("'jobs' must be a list of job names such as ['alice/mnist-cnn/12'].")
        if len(names) > self.max_jobs:
            raise BadRequest(f"At most {self.max_jobs} jobs in one TensorBoard, not {len(names)}.")
        outputs: dict[str, str] = {}
        images: list[str] = []
        jobs: set[str] = set()
        with self.sessions() as s:
            for name in names:
                parts = name.strip().split("/")
                if len(parts) != 3:
                    raise BadRequest(f"Cannot read job {shown(name)}: use OWNER/PROJECT/NUMBER.")
                job = find_job(s, caller, *parts)
                label = f"{job.project}/{job.number}"
                outputs[label if job.owner == caller.name else f"{job.owner}/{label}"] = \
                    str(self.layout.job_output(job.owner, job.project, job.number))
                images.append(job.image)
                jobs.add(f"{job.owner}/{label}")
        tb_id = hashlib.sha256(json.dumps([caller.name, sorted(jobs)]).encode()).hexdigest()[:12]
        listen, _, port = self.executor.replica_address(f"{caller.name}/tensorboard/{tb_id}")
        run = TensorBoardRun(owner=caller.name, tb_id=tb_id, image=images[0], outputs=outputs, listen=listen,
                             port=port or free_port(), path_prefix=f"{self.prefix}/{caller.name}/{tb_id}",
                             local=self.executor.name == "local")
        return run, sorted(jobs)

    async def open(self, caller: Caller, body: dict) -> tuple[dict, bool]:
        """The TensorBoard over ``body['jobs']``, started (and waited for) unless it runs; whether it was new."""
        loop = asyncio.get_running_loop()
        run, jobs = await loop.run_in_executor(None, self.resolve, caller, body)
        key = f"{run.owner}/{run.tb_id}"
        board = self.boards.get(key)
        created = board is None
        if board is None:
            board = LiveBoard(run.owner, run.tb_id, jobs, str(self.layout.tensorboard_dir(run.owner, run.tb_id)))
            self.boards[key] = board
            try:
                await self._start(board, run)
            except BaseException as exc:
                self.boards.pop(key, None)
                board.failed = getattr(exc, "message", "") or "TensorBoard could not start."
                board.ready.set()
                await self._stop(board)
                raise
        try:
            await asyncio.wait_for(board.ready.wait(), self.start_timeout + 5)
        except asyncio.TimeoutError:
            raise Unavailable("TensorBoard is still starting; try again in a moment.") from None
        if board.failed:
            raise Unavailable(board.failed)
        board.last_used = time.monotonic()
        return self.record(board), created

    async def _start(self, board: LiveBoard, run: TensorBoardRun) -> None:
        loop = asyncio.get_running_loop()
        spec = await loop.run_in_executor(None, tensorboard_spec, self.layout, run)
        board.connect = self.executor.replica_address(spec.name)[1]
        board.port = run.port
        try:
            board.handle = await loop.run_in_executor(None, self.executor.start, spec)
        except ExecutorError as exc:
            raise Unavailable(f"TensorBoard could not start: {exc.message}") from None
        (self.layout.tensorboard_dir(run.owner, run.tb_id) / "handle.json").write_text(json.dumps(
            {"handle": board.handle, "workdir": board.workdir}))
        exited = loop.run_in_executor(None, self.executor.wait, board.handle, board.workdir)
        deadline = time.monotonic() + self.start_timeout
        client = AsyncHTTPClient()
        while time.monotonic() < deadline:
            if exited.done():
                raise Unavailable(f"TensorBoard exited at its start (code {exited.result()}): is tensorboard "
                                  f"installed in the environment image {run.image}?")
            try:
                await client.fetch(self.upstream(board, self.url_of(board)), request_timeout=2)
                board.ready.set()
                self.log.info("TensorBoard %s/%s over %s on port %d", board.owner, board.tb_id, board.jobs,
                              board.port)
                return
            except (OSError, HTTPClientError):
                await asyncio.sleep(READY_POLL)
        raise Unavailable(f"TensorBoard did not answer within {self.start_timeout:g} s; try again.")

    def upstream(self, board: LiveBoard, uri: str) -> str:
        return f"http://{board.connect}:{board.port}{uri}"

    def find(self, caller: Caller, owner: str, tb_id: str, *, touch: bool = False) -> LiveBoard:
        """A running TensorBoard the caller may see (its owner or an admin), else 404; ``touch``:
        a look at TensorBoard itself (the proxy), which keeps it from being stopped as idle."""
        board = self.boards.get(f"{owner}/{tb_id}")
        if board is None:
            raise NotFound(f"TensorBoard {shown(owner)}/{shown(tb_id)} not found (it stops when idle; open it "
                           "again with floyd tensorboard JOB).")
        check_access(caller, board.owner, False, f"TensorBoard {owner}/{tb_id}")
        if touch:
            board.last_used = time.monotonic()
        return board

    def get(self, caller: Caller, owner: str, tb_id: str) -> dict:
        return self.record(self.find(caller, owner, tb_id))

    def list(self, caller: Caller) -> builtins.list[dict]:
        return [self.record(b) for b in self.boards.values() if caller.admin or b.owner == caller.name]

    async def close_board(self, caller: Caller, owner: str, tb_id: str) -> None:
        board = self.find(caller, owner, tb_id)
        self.boards.pop(f"{owner}/{tb_id}", None)
        await self._stop(board)

    async def _stop(self, board: LiveBoard) -> None:
        if board.handle:
            await asyncio.get_running_loop().run_in_executor(None, self._stop_handle, board.handle, board.workdir)

    def _stop_handle(self, handle: str, workdir: str) -> None:
        try:
            self.executor.stop(handle, workdir, grace=2)
            self.executor.cleanup(handle)
        except ExecutorError as exc:
            self.log.warning("Stopping TensorBoard %s: %s", handle, exc.message)
        (Path(workdir) / "handle.json").unlink(missing_ok=True)

    # -- start-up, the idle sweep, shutdown -------------------------------------------------------
    async def start(self) -> None:
        """Stop what a previous bridge left running, then sweep idle TensorBoards."""
        for handle_file in self.layout.tensorboards.glob("*/*/handle.json"):
            data = json.loads(handle_file.read_text())
            await asyncio.get_running_loop().run_in_executor(None, self._stop_handle, data["handle"], data["workdir"])
        self._task = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, min(30.0, self.idle_timeout / 4)))
            now = time.monotonic()
            for key, board in list(self.boards.items()):
                if board.ready.is_set() and now - board.last_used > self.idle_timeout:
                    self.log.info("TensorBoard %s idle for %.0f s: stopping it", key, now - board.last_used)
                    self.boards.pop(key, None)
                    await self._stop(board)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for board in list(self.boards.values()):
            await self._stop(board)
        self.boards.clear()
