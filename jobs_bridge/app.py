"""BridgeApp: the Floyd service process. Configuration is traitlets, as in JupyterHub."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from tornado import httpserver
from tornado.routing import AnyMatches, PathMatches, Rule, RuleRouter
from traitlets import Bool, Dict, Float, Integer, List, Type, Unicode, default
from traitlets.config import Application

from jobs_bridge import __version__, db
from jobs_bridge.admission import WriteGate
from jobs_bridge.auth.endpoint_gate import EndpointGate, EndpointKeyBackoff, KeyBackoff
from jobs_bridge.auth.endpoint_keys import KeyStore
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.datasets.uploads import UploadManager
from jobs_bridge.errors import FloydError
from jobs_bridge.executors.base import Executor
from jobs_bridge.executors.choice import runtime_class
from jobs_bridge.executors.docker import DockerExecutor
from jobs_bridge.executors.local import SAFE_ENV, LocalExecutor
from jobs_bridge.executors.swarm import SwarmExecutor
from jobs_bridge.jobs.compare import RunComparison
from jobs_bridge.jobs.manager import JobManager
from jobs_bridge.jobs.queue import JobQueue
from jobs_bridge.jobs.runner import JobRunner
from jobs_bridge.jobs.spec import SpecResolver
from jobs_bridge.lineage.graph import LineageBuilder
from jobs_bridge.memtrim import freeze_startup_objects
from jobs_bridge.pipelines.manager import PipelineManager
from jobs_bridge.projects import ProjectManager
from jobs_bridge.registry.manager import ModelManager
from jobs_bridge.request_limits import Followers, RequestLimits
from jobs_bridge.resources.environments import DEFAULT_ENVIRONMENTS, EnvironmentList
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.resources.limits import Limits, ResourceLimits
from jobs_bridge.schedules.clock import ScheduleClock
from jobs_bridge.schedules.manager import ScheduleManager
from jobs_bridge.schedules.targets import JobTarget, PipelineTarget, Target
from jobs_bridge.services import BridgeServices
from jobs_bridge.serving.dataplane.haproxy import RuntimeError_
from jobs_bridge.serving.dataplane.plane import DataPlane, dataplane_state
from jobs_bridge.serving.deployments import DeploymentManager
from jobs_bridge.serving.proxy import EndpointProxy
from jobs_bridge.serving.proxy import route as proxy_route
from jobs_bridge.serving.router import Router
from jobs_bridge.serving.scaler import Autoscaler
from jobs_bridge.serving.spec import VersionResolver
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.tensorboards.manager import TensorBoardManager
from jobs_bridge.webapp import body_guard, cookie_secret, make_web_app, openapi_document
from jobs_bridge.workspaces import WorkspaceManager


class OptionalType(Type):
    """A Type trait whose default, None, means "decide at start-up" (traitlets cannot print it)."""

    def default_value_repr(self) -> str:
        return "None" if self.default_value is None else super().default_value_repr()


class BridgeApp(Application):
    name = "floyd-bridge"
    description = "The Floyd bridge: datasets, projects, jobs and endpoints, as a JupyterHub service."
    version = __version__

    aliases = {
        "root": "BridgeApp.floyd_root",
        "db-url": "BridgeApp.db_url",
        "port": "BridgeApp.port",
        "config": "BridgeApp.config_file",
        "log-level": "Application.log_level",
    }
    flags = {
        "generate-config": ({"BridgeApp": {"generate_config": True}}, "Write a config file documenting every option."),
        "upgrade-db": ({"BridgeApp": {"upgrade_db_and_exit": True}}, "Upgrade the database schema, then exit."),
    }

    # Configured through this app (``c.DatasetManager.user_quota_bytes = …``; --help-all lists them).
    # Every configurable part, so --generate-config and --help-all document all their settings.
    classes = [DatasetManager, UploadManager, ProjectManager, GpuAllocator, ResourceLimits, WorkspaceManager,
               JobQueue, JobRunner, SpecResolver, PipelineManager, DockerExecutor, LocalExecutor, DeploymentManager, Router,
               Autoscaler, VersionResolver, DataPlane, KeyBackoff, EndpointKeyBackoff, RequestLimits, LineageBuilder,
               ScheduleManager, ScheduleClock, TensorBoardManager]

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    config_file = Unicode("floyd_bridge_config.py", help="Config file to load (Python, like jupyterhub_config.py).").tag(config=True)
    generate_config = Bool(False, help="Write the default config file and exit.").tag(config=True)
    upgrade_db_and_exit = Bool(False, help="Run the database migrations and exit.").tag(config=True)

    floyd_root = Unicode(
        help="Storage root (FLOYD_ROOT): database, blobs, datasets, projects, jobs. Default: $FLOYD_ROOT or ./var."
    ).tag(config=True)

    @default("floyd_root")
    def _default_root(self) -> str:
        return os.environ.get("FLOYD_ROOT", "var")

    db_url = Unicode(
        help="SQLAlchemy URL of the database. Default: sqlite:///<floyd_root>/db.sqlite; "
        "e.g. postgresql+psycopg://floyd:secret@db/floyd."
    ).tag(config=True)

    @default("db_url")
    def _default_db_url(self) -> str:
        return os.environ.get("FLOYD_DB_URL") or f"sqlite:///{Path(self.floyd_root).resolve() / 'db.sqlite'}"

    upgrade_db = Bool(
        False, help="Upgrade an out-of-date database schema at start-up instead of refusing to start. Back up first."
    ).tag(config=True)

    ip = Unicode(help="Interface to listen on. Default: from JUPYTERHUB_SERVICE_URL, else 127.0.0.1.").tag(config=True)

    @default("ip")
    def _default_ip(self) -> str:
        url = os.environ.get("JUPYTERHUB_SERVICE_URL")
        return (urlparse(url).hostname or "127.0.0.1") if url else "127.0.0.1"

    port = Integer(help="Port to listen on. Default: from JUPYTERHUB_SERVICE_URL, else 8001.").tag(config=True)

    @default("port")
    def _default_port(self) -> int:
        url = os.environ.get("JUPYTERHUB_SERVICE_URL")
        return (urlparse(url).port or 8001) if url else 8001

    service_prefix = Unicode(help="URL prefix of the service, from JUPYTERHUB_SERVICE_PREFIX.").tag(config=True)

    @default("service_prefix")
    def _default_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/floyd/")

    hub_prefix = Unicode(help="URL prefix of the hub's pages, for links (e.g. /hub/).").tag(config=True)

    @default("hub_prefix")
    def _default_hub_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/"

    max_json_bytes = Integer(
        512 << 20, help="Largest request body, in bytes, but for the streamed uploads (UploadManager.max_request_bytes): "
        "JSON bodies (a manifest of a very large version is the biggest) and requests to endpoints. A larger one is "
        "read, thrown away and answered 413.",
    ).tag(config=True)
    environments = List(
        Dict(), default_value=DEFAULT_ENVIRONMENTS,
        help="The environments users choose from (never an arbitrary image): a list of "
        "{'name', 'image', 'description', 'gpu' (GPUs allowed), 'cpus', 'memory'} with the default resources, "
        "and 'node_labels' ({'gpu': 'a100'}: with the swarm runtime, its jobs run only on nodes with those labels). "
        "The first is the default.",
    ).tag(config=True)
    job_executor_class = OptionalType(
        default_value=None, klass=Executor, allow_none=True,
        help="Where jobs run: an Executor subclass (jobs_bridge.executors.base states the contract), e.g. "
        "'jobs_bridge.executors.docker.DockerExecutor' (containers) or 'jobs_bridge.executors.local.LocalExecutor' "
        "(processes of the bridge's user, no isolation) or 'jobs_bridge.executors.swarm.SwarmExecutor' (Swarm "
        "services on many machines). Default: Docker when an engine answers, else local; "
        "FLOYD_JOB_EXECUTOR=docker|local|swarm overrides.",
    ).tag(config=True)
    # The queue's and the runner's settings live on their classes: c.JobQueue.max_running,
    # c.JobQueue.max_running_per_user, c.SpecResolver.max_sweep_jobs, c.JobRunner.stats_interval,
    # c.DockerExecutor.network.
    public_url = Unicode(
        help="The platform's URL as jobs reach it (FLOYD_URL inside them). Default: $FLOYD_PUBLIC_URL or "
        "http://127.0.0.1:$FLOYD_HUB_PORT/."
    ).tag(config=True)

    @default("public_url")
    def _default_public_url(self) -> str:
        return os.environ.get("FLOYD_PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('FLOYD_HUB_PORT', '8000')}/"

    admin_services = List(
        Unicode(), default_value=["floyd-spawner"],
        help="Hub services that act with admin rights on the bridge (the workspace spawner asks, on a "
        "user's behalf, which mounts and GPUs they may have). Other services are ordinary callers.",
    ).tag(config=True)
    executor_threads = Integer(
        8, help="Threads for blocking work: database, hashing, file copies. Keep the event loop free."
    ).tag(config=True)
    read_threads = Integer(
        4, help="Threads for the blocking part of API reads (GET, HEAD), apart from executor_threads: "
        "a listing or a record never waits behind a burst of uploads, commits and job submissions.",
    ).tag(config=True)
    write_concurrency = Integer(
        2, help="API writes (POST, PUT, PATCH, DELETE) whose blocking part runs at once; more wait, in the order "
        "they came, without a thread (none is refused). Writes take turns at SQLite's one write lock anyway, and "
        "more at once only take the GIL and the CPU from reads and the event loop. Raise it with PostgreSQL.",
    ).tag(config=True)
    gil_switch_interval = Float(0.0005, min=1e-6, max=1.0, help=(
        "Seconds a busy thread keeps the GIL while another waits (sys.setswitchinterval). A read takes it back after "
        "each database call: at Python's 5 ms a 2 ms job list took 50–60 ms in a burst, at 0.5 ms 28–36.")
    ).tag(config=True)

    # -- wiring ------------------------------------------------------------------------
    engine: Engine
    sessions: sessionmaker[Session]
    executor: ThreadPoolExecutor
    read_executor: ThreadPoolExecutor
    layout: StorageLayout
    store: BlobStore
    environments_list: EnvironmentList
    limits: Limits
    dataset_manager: DatasetManager
    upload_manager: UploadManager
    models: ModelManager
    project_manager: ProjectManager
    gpu_allocator: GpuAllocator
    workspace_manager: WorkspaceManager
    job_manager: JobManager
    pipelines: PipelineManager
    deployments: DeploymentManager
    services: BridgeServices

    def initialize(self, argv: list[str] | None = None) -> None:
        super().initialize(argv)
        if self.generate_config:
            return
        if os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
        self.init_storage()
        self.init_db()
        if self.upgrade_db_and_exit:
            return
        self.init_executor()
        self.init_resources()
        self.init_managers()
        self.job_manager = self.make_job_manager(self.limits, len(self.gpu_allocator.devices))
        self.pipelines = PipelineManager(self.sessions, self.layout, self.job_manager, self.upload_manager,
                                         self.models, parent=self)
        self.deployments = self.make_deployments()
        targets: dict[str, Target] = {"job": JobTarget(self.job_manager), "pipeline": PipelineTarget(self.pipelines)}
        self.schedules = ScheduleManager(self.sessions, targets, parent=self)
        self.clock = ScheduleClock(self.sessions, self.schedules.targets, self.executor, parent=self)
        self.tensorboards = TensorBoardManager(self.sessions, self.layout, self.job_manager.executor,
                                               self.service_prefix, parent=self)
        self.init_services()
        self.recover()

    def init_storage(self) -> None:
        self.layout = StorageLayout(self.floyd_root)
        self.layout.ensure()
        self.store = BlobStore(self.layout.blobs, self.layout.tmp)

    def init_executor(self) -> None:
        self.executor = ThreadPoolExecutor(self.executor_threads, thread_name_prefix="bridge")
        self.read_executor = ThreadPoolExecutor(self.read_threads, thread_name_prefix="bridge-read")

    def init_resources(self) -> None:
        """The environments and limits, checked now: a mistake stops the start with a message."""
        try:
            self.environments_list = EnvironmentList(list(self.environments))
            self.limits = ResourceLimits(parent=self).values()
        except (ValueError, FloydError) as exc:
            self.log.critical("Configuration error: %s", exc)
            sys.exit(1)

    def init_managers(self) -> None:
        """Datasets, uploads, projects, GPUs and workspaces; each reads its own settings."""
        self.dataset_manager = DatasetManager(parent=self, sessions=self.sessions, layout=self.layout,
                                              store=self.store)
        self.upload_manager = UploadManager(parent=self, datasets=self.dataset_manager)
        self.models = ModelManager(parent=self, sessions=self.sessions, layout=self.layout,
                                   datasets=self.dataset_manager, uploads=self.upload_manager)
        self.project_manager = ProjectManager(parent=self, sessions=self.sessions, layout=self.layout)
        self.gpu_allocator = GpuAllocator(parent=self, sessions=self.sessions)
        self.log.info("GPUs: %s", ", ".join(self.gpu_allocator.devices) or "none")
        self.workspace_manager = WorkspaceManager(
            parent=self, sessions=self.sessions, layout=self.layout, datasets=self.dataset_manager,
            projects=self.project_manager, environments=self.environments_list, gpus=self.gpu_allocator,
            limits=self.limits)

    def init_services(self) -> None:
        """What handlers may reach (tornado's settings["bridge"])."""
        limits = RequestLimits(parent=self)
        self.services = BridgeServices(
            sessions=self.sessions, layout=self.layout, store=self.store, executor=self.executor,
            read_executor=self.read_executor, write_gate=self.write_gate(),
            dataset_manager=self.dataset_manager, upload_manager=self.upload_manager, models=self.models,
            project_manager=self.project_manager, workspace_manager=self.workspace_manager,
            gpu_allocator=self.gpu_allocator, environments_list=self.environments_list,
            job_manager=self.job_manager, pipelines=self.pipelines, deployments=self.deployments, schedules=self.schedules,
            tensorboards=self.tensorboards, admin_services=frozenset(self.admin_services),
            service_prefix=self.service_prefix, hub_prefix=self.hub_prefix, openapi_document=lambda: openapi_document(self.service_prefix),
            request_limits=limits, followers=Followers(limits), comparison=RunComparison(self.sessions),
            lineage=LineageBuilder(parent=self, sessions=self.sessions, prefix=self.service_prefix))

    def write_gate(self) -> WriteGate:
        try:
            return WriteGate(self.write_concurrency)
        except ValueError as exc:
            self.log.critical("Configuration error: %s", exc)
            sys.exit(1)

    def recover(self) -> None:
        """Finish or undo what a crash left half done; forget expired uploads."""
        for action in self.dataset_manager.recover() + self.upload_manager.cleanup():
            self.log.warning("Recovery: %s", action)

    def make_job_manager(self, limits: Limits, gpu_count: int) -> JobManager:
        """The executor (FLOYD_JOB_EXECUTOR, else job_executor_class, else Docker when an engine
        answers) and the job components; each reads its own settings from this app's config."""
        try:
            cls = runtime_class(os.environ.get("FLOYD_JOB_EXECUTOR", ""), self.job_executor_class)
        except ValueError as exc:
            self.log.critical("Configuration error: %s", exc)
            sys.exit(1)
        instance = self.layout.instance_id
        executor = cls(self.layout.root, instance, parent=self, **self.executor_env_defaults(cls))
        self.log.info("Jobs run with the %s executor", executor.name)
        offered = executor.gpu_devices()
        if offered is not None and "devices" not in self.config.get("GpuAllocator", {}):
            self.gpu_allocator.devices = offered
            gpu_count = len(offered)
            self.log.info("GPUs (from the %s runtime): %s", executor.name, ", ".join(offered) or "none")
        resolver = SpecResolver(self.layout, self.dataset_manager, self.environments_list, limits.max_cpus,
                                limits.max_memory, limits.max_gpus, gpu_count, parent=self)
        return JobManager(self.sessions, self.layout, resolver, self.gpu_allocator, executor, self.public_url,
                          parent=self)

    def executor_env_defaults(self, cls: type[Executor]) -> dict[str, Any]:
        """What an executor takes from the bridge's environment, unless the config says otherwise
        (the environment is read here, never below the app): FLOYD_DOCKER_NETWORK (docker-compose
        sets it) as DockerExecutor.network, the variables a local job may inherit
        (LocalExecutor.inherited_env), FLOYD_SWARM_MANAGER, the environments' node labels and the
        default environment's image (SwarmExecutor.manager_url, node_labels, probe_image)."""
        sections = [k.__name__ for k in cls.mro()]

        def configured(trait: str) -> bool:
            return any(trait in self.config.get(name, {}) for name in sections)

        if issubclass(cls, LocalExecutor) and not configured("inherited_env"):
            return {"inherited_env": {k: v for k, v in os.environ.items() if k in SAFE_ENV}}
        if issubclass(cls, SwarmExecutor):
            manager = os.environ.get("FLOYD_SWARM_MANAGER")
            defaults = {"manager_url": manager, "node_labels": self.environments_list.placement(),
                        "probe_image": self.environments_list.default().image}
            return {k: v for k, v in defaults.items() if v and not configured(k)}
        network = os.environ.get("FLOYD_DOCKER_NETWORK")
        if network and issubclass(cls, DockerExecutor) and not configured("network"):
            return {"network": network}
        return {}

    def make_deployments(self) -> DeploymentManager:
        """Serving's settings live on its classes: c.DeploymentManager, c.Router, c.VersionResolver."""
        self.router = Router(parent=self)
        self.keys = KeyStore(self.sessions)
        return DeploymentManager(self.sessions, self.layout, VersionResolver(self.job_manager.resolver, parent=self),
                                 self.gpu_allocator, self.job_manager.executor, self.router, self.keys,
                                 self.public_url, self.service_prefix, cookie_secret(self.layout), parent=self)

    def init_db(self) -> None:
        self.engine = db.make_engine(self.db_url)
        if self.upgrade_db_and_exit:
            db.upgrade(self.engine, self.db_url)
            self.log.info("Database %s upgraded to %s", self.engine.url.render_as_string(True), db.head_revision(self.db_url))
            return
        try:
            state = db.init_schema(self.engine, self.db_url, self.upgrade_db)
        except db.SchemaOutOfDate as exc:
            self.log.critical("%s", exc)
            sys.exit(1)
        self.log.info("Database %s (%s)", self.engine.url.render_as_string(True), state)
        self.sessions = db.session_factory(self.engine)

    def start(self) -> None:
        if self.generate_config:
            self.write_default_config()
            return
        if self.upgrade_db_and_exit:
            return
        asyncio.run(self.serve())

    def write_default_config(self) -> None:
        path = Path(self.config_file)
        if path.exists():
            print(f"{path} exists; move it away first (nothing was written).", file=sys.stderr)
            sys.exit(1)
        path.write_text(self.generate_config_file())
        print(f"Wrote {path}")

    def make_router(self) -> RuleRouter:
        """Requests to endpoints go straight to the proxy (no tornado.web on their path); the
        rest to the web application."""
        app = make_web_app(self.services, self.service_prefix, cookie_secret(self.layout))
        self.gate = gate = EndpointGate(self.keys, app.settings["hub_auth"], KeyBackoff(parent=self),
                                        EndpointKeyBackoff(parent=self))
        proxy = EndpointProxy(self.router, gate, self.service_prefix)
        return RuleRouter([Rule(PathMatches(proxy_route(self.service_prefix)), proxy), Rule(AnyMatches(), app)])

    async def listen(self, server: httpserver.HTTPServer) -> DataPlane | None:
        """The bridge on ``ip:port``, or HAProxy there with the bridge behind it (serving/dataplane)."""
        plane = DataPlane(self.router, self.keys, self.gate, dataplane_state(self.layout.root), self.ip, self.port,
                          f"{self.service_prefix.rstrip('/')}/endpoints", self.max_json_bytes, parent=self)
        try:
            if not await plane.listen(server):
                return None
        except (ValueError, RuntimeError_) as exc:
            self.log.critical("The endpoint data plane (HAProxy) did not start: %s", exc)
            sys.exit(1)
        self.deployments.replicas.quiesce = plane.quiesce
        return plane

    async def serve(self) -> None:
        server = httpserver.HTTPServer(
            body_guard(self.make_router(), self.service_prefix, self.max_json_bytes), xheaders=True, max_body_size=self.max_json_bytes, chunk_size=1 << 20,
            max_buffer_size=self.max_json_bytes,
        )
        plane = await self.listen(server)
        await self.job_manager.start()
        self.pipelines.start()
        await self.deployments.start()
        await asyncio.gather(self.clock.start(), self.tensorboards.start())
        sys.setswitchinterval(self.gil_switch_interval)
        self.log.info("%d start-up objects kept out of the garbage collector's full passes; GIL switch interval "
                      "%.2f ms", freeze_startup_objects(), sys.getswitchinterval() * 1000)
        self.log.info("Floyd bridge %s on http://%s:%d%s (root %s)", __version__, self.ip, self.port,
                      self.service_prefix, self.layout.root)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()
        if plane is not None:
            await plane.close()
        self.pipelines.close()
        await asyncio.gather(self.clock.close(), self.tensorboards.close())
        await self.job_manager.close()
        await self.deployments.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.read_executor.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    BridgeApp.launch_instance(argv)
