"""BridgeApp: the Floyd service process. Configuration is traitlets, as in JupyterHub."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from sqlalchemy import Engine
from tornado import httpserver, web
from tornado.routing import AnyMatches, PathMatches, Rule, RuleRouter
from traitlets import Bool, Dict, Float, Integer, List, Type, Unicode, default
from traitlets.config import Application

from jobs_bridge import __version__, db
from jobs_bridge.datasets.manager import DatasetManager, QuotaPolicy
from jobs_bridge.datasets.uploads import UploadManager
from jobs_bridge.errors import FloydError
from jobs_bridge.executors.base import Executor
from jobs_bridge.executors.docker import DockerExecutor, docker_available
from jobs_bridge.executors.local import LocalExecutor
from jobs_bridge.handlers import API_MODULES, PAGE_MODULES
from jobs_bridge.handlers.base import NotFoundHandler
from jobs_bridge.jobs.manager import JobLimits, JobManager
from jobs_bridge.jobs.spec import SpecResolver
from jobs_bridge.projects import ProjectManager
from jobs_bridge.resources.environments import DEFAULT_ENVIRONMENTS, EnvironmentList, parse_memory
from jobs_bridge.resources.gpus import GpuAllocator, discover_gpus
from jobs_bridge.serving.deployments import DeploymentManager, ServingLimits
from jobs_bridge.serving.keys import KeyStore
from jobs_bridge.serving.proxy import EndpointProxy
from jobs_bridge.serving.proxy import route as proxy_route
from jobs_bridge.serving.router import Router
from jobs_bridge.serving.spec import VersionResolver
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.workspaces import Limits, WorkspaceManager

HERE = Path(__file__).parent
GiB = 1 << 30


def template_to_regex(template: str) -> str:
    """``/api/v1/datasets/{owner}/{name}`` → a tornado pattern with named groups."""
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)


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

    user_quota_bytes = Integer(
        100 * GiB, help="Default dataset storage quota per user, in bytes (sum of the sizes of their versions)."
    ).tag(config=True)
    user_quotas = Dict(
        help="Per-user quota overrides in bytes, e.g. {'alice': 500 * 2**30}."
    ).tag(config=True)
    max_files_per_version = Integer(1_000_000, help="Most files one dataset version may hold.").tag(config=True)
    max_file_size = Integer(1 << 40, help="Largest single file accepted, in bytes (default 1 TiB).").tag(config=True)
    max_request_bytes = Integer(
        64 * GiB, help="Largest streamed request body (a pack of blobs or one blob upload), in bytes."
    ).tag(config=True)
    max_json_bytes = Integer(
        512 << 20, help="Largest JSON request body (manifests of very large versions), in bytes."
    ).tag(config=True)
    environments = List(
        Dict(), default_value=DEFAULT_ENVIRONMENTS,
        help="The environments users choose from (never an arbitrary image): a list of "
        "{'name', 'image', 'description', 'gpu' (GPUs allowed), 'cpus', 'memory'} with the default resources. "
        "The first is the default.",
    ).tag(config=True)
    gpus = List(
        Unicode(), default_value=None, allow_none=True,
        help="GPU device ids the allocator hands out (e.g. ['0', '1']). Default: what `nvidia-smi` reports, "
        "or none.",
    ).tag(config=True)
    max_cpus = Float(8.0, help="Most CPUs a workspace or a job may ask for.").tag(config=True)
    max_memory = Unicode("32G", help="Most memory a workspace or a job may ask for (bytes, or '32G').").tag(config=True)
    max_gpus = Integer(4, help="Most GPUs one workspace or one job may hold.").tag(config=True)
    job_executor_class = OptionalType(
        default_value=None, klass=Executor, allow_none=True,
        help="Where jobs run: an Executor subclass (jobs_bridge.executors.base states the contract), e.g. "
        "'jobs_bridge.executors.docker.DockerExecutor' (containers) or 'jobs_bridge.executors.local.LocalExecutor' "
        "(processes of the bridge's user, no isolation). Default: Docker when an engine answers, else local; "
        "FLOYD_JOB_EXECUTOR=docker|local overrides.",
    ).tag(config=True)
    max_running_jobs = Integer(4, help="Jobs running at once on the whole platform (0 = no limit).").tag(config=True)
    max_running_jobs_per_user = Integer(
        2, help="Jobs one user may have running at once (0 = no limit); the rest wait in the queue."
    ).tag(config=True)
    max_sweep_jobs = Integer(200, help="Most jobs one sweep may create.").tag(config=True)
    job_stats_interval = Float(
        10.0, help="Seconds between samples of a job's CPU and memory use (0 turns sampling off)."
    ).tag(config=True)
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
    upload_expiry_days = Float(
        7.0, help="Days an unfinished upload may be resumed; older ones are forgotten at start-up."
    ).tag(config=True)
    max_endpoint_replicas = Integer(8, help="Most replicas one endpoint version may have.").tag(config=True)
    endpoint_ready_timeout = Float(
        300.0, help="Seconds a new endpoint version's replicas may take to pass their readiness check (the first "
        "install of floyd_requirements.txt counts); after that the deploy fails and the previous version serves on.",
    ).tag(config=True)
    endpoint_drain_timeout = Float(
        60.0, help="Seconds a replaced endpoint version may take to finish its in-flight requests before it stops.",
    ).tag(config=True)
    endpoint_stop_grace = Float(
        10.0, help="Seconds between SIGTERM and SIGKILL when an endpoint replica stops.").tag(config=True)
    endpoint_request_timeout = Float(
        300.0, help="Seconds a request to an endpoint may take before the proxy answers 504 (0 = no limit).",
    ).tag(config=True)
    endpoint_max_restart_delay = Float(
        30.0, help="Longest wait, in seconds, before restarting a crashed endpoint replica (the wait doubles "
        "from 1 s with each crash).",
    ).tag(config=True)
    executor_threads = Integer(
        8, help="Threads for blocking work: database, hashing, file copies. Keep the event loop free."
    ).tag(config=True)

    # -- wiring ------------------------------------------------------------------------
    engine: Engine
    executor: ThreadPoolExecutor

    def initialize(self, argv: list[str] | None = None) -> None:
        super().initialize(argv)
        if self.generate_config:
            return
        if os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
        self.layout = StorageLayout(self.floyd_root)
        self.layout.ensure()
        self.init_db()
        if self.upgrade_db_and_exit:
            return
        self.executor = ThreadPoolExecutor(self.executor_threads, thread_name_prefix="bridge")
        self.store = BlobStore(self.layout.blobs, self.layout.tmp)
        quota = QuotaPolicy(self.user_quota_bytes, dict(self.user_quotas))
        self.dataset_manager = DatasetManager(self.sessions, self.layout, self.store, quota)
        self.upload_manager = UploadManager(self.dataset_manager, self.max_files_per_version, self.max_file_size)
        self.project_manager = ProjectManager(self.sessions, self.layout)
        try:
            self.environments_list = EnvironmentList(list(self.environments))
            limits = Limits(self.max_cpus, parse_memory(self.max_memory, "c.BridgeApp.max_memory"), self.max_gpus)
        except (ValueError, FloydError) as exc:
            self.log.critical("Configuration error: %s", exc)
            sys.exit(1)
        devices = list(self.gpus) if self.gpus is not None else discover_gpus()
        self.gpu_allocator = GpuAllocator(self.sessions, devices)
        self.workspace_manager = WorkspaceManager(self.sessions, self.layout, self.dataset_manager,
                                                  self.project_manager, self.environments_list,
                                                  self.gpu_allocator, limits)
        self.log.info("GPUs: %s", ", ".join(devices) or "none")
        self.job_manager = self.make_job_manager(limits, len(devices))
        self.deployments = self.make_deployments()
        for action in self.dataset_manager.recover() + self.upload_manager.cleanup(self.upload_expiry_days):
            self.log.warning("Recovery: %s", action)

    def make_job_manager(self, limits: Limits, gpu_count: int) -> JobManager:
        cls: type[Executor]
        choice = os.environ.get("FLOYD_JOB_EXECUTOR", "")
        if choice not in ("", "docker", "local"):
            self.log.critical("Configuration error: FLOYD_JOB_EXECUTOR=%r; use 'docker' or 'local'.", choice)
            sys.exit(1)
        if choice:
            cls = DockerExecutor if choice == "docker" else LocalExecutor
        elif self.job_executor_class is not None:
            cls = self.job_executor_class
        else:
            cls = DockerExecutor if docker_available() else LocalExecutor
        instance = hashlib.sha256(str(self.layout.root).encode()).hexdigest()[:8]
        executor = cls(self.layout.root, instance)
        self.log.info("Jobs run with the %s executor", executor.name)
        resolver = SpecResolver(self.layout, self.dataset_manager, self.environments_list, limits.max_cpus,
                                limits.max_memory, limits.max_gpus, gpu_count, self.max_sweep_jobs)
        job_limits = JobLimits(self.max_running_jobs, self.max_running_jobs_per_user, self.job_stats_interval)
        return JobManager(self.sessions, self.layout, resolver, self.gpu_allocator, executor, job_limits,
                          self.public_url)

    def make_deployments(self) -> DeploymentManager:
        self.router = Router(connect_timeout=5.0, request_timeout=self.endpoint_request_timeout)
        self.keys = KeyStore(self.sessions)
        serving = ServingLimits(self.endpoint_ready_timeout, self.endpoint_drain_timeout, self.endpoint_stop_grace,
                                self.endpoint_max_restart_delay)
        return DeploymentManager(self.sessions, self.layout,
                                 VersionResolver(self.job_manager.resolver, self.max_endpoint_replicas),
                                 self.gpu_allocator, self.job_manager.executor, self.router, self.keys, serving,
                                 self.public_url, self.service_prefix, self.cookie_secret())

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

    def usage(self, owner: str) -> int:
        with self.sessions() as s:
            return self.dataset_manager.usage(s, owner)

    def openapi_document(self) -> dict[str, Any]:
        doc = yaml.safe_load((HERE / "openapi.yaml").read_text())
        doc["info"]["version"] = __version__
        doc["servers"] = [{"url": self.service_prefix.rstrip("/")}]
        return doc

    def route_table(self) -> list[tuple[str, type]]:
        """Every route as (OpenAPI-style template, handler), without the service prefix."""
        routes: list[tuple[str, type]] = []
        for module in API_MODULES + PAGE_MODULES:
            routes.extend(module.default_handlers)
        return routes

    def cookie_secret(self) -> bytes:
        path = self.layout.root / "bridge_cookie_secret"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return bytes.fromhex(path.read_text().strip())

    def make_app(self) -> web.Application:
        prefix = self.service_prefix.rstrip("/")
        # One HubOAuth for the whole process: the OAuth callback handler uses the singleton, and
        # the PKCE state it needs lives in that object.
        hub_auth = HubOAuth.instance(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""), cache_max_age=60)
        handlers: list[Any] = [(prefix + template_to_regex(t), h) for t, h in self.route_table()]
        handlers.append((prefix + "/oauth_callback", HubOAuthCallbackHandler))
        handlers.append((prefix + "/api/.*", NotFoundHandler))
        return web.Application(
            handlers,
            bridge=self,
            hub_auth=hub_auth,
            cookie_secret=self.cookie_secret(),
            template_path=str(HERE / "templates"),
            static_path=str(HERE / "static"),
            static_url_prefix=prefix + "/static/",
            default_handler_class=NotFoundHandler,
            login_url=hub_auth.login_url,
            xsrf_cookies=True,
        )

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
        app = self.make_app()
        proxy = EndpointProxy(self.router, self.keys, app.settings["hub_auth"], self.service_prefix)
        return RuleRouter([Rule(PathMatches(proxy_route(self.service_prefix)), proxy), Rule(AnyMatches(), app)])

    async def serve(self) -> None:
        server = httpserver.HTTPServer(
            self.make_router(), xheaders=True, max_body_size=self.max_json_bytes, chunk_size=1 << 20,
            max_buffer_size=self.max_json_bytes,
        )
        server.listen(self.port, self.ip)
        await self.job_manager.start()
        await self.deployments.start()
        self.log.info("Floyd bridge %s on http://%s:%d%s (root %s)", __version__, self.ip, self.port,
                      self.service_prefix, self.layout.root)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()
        await self.job_manager.close()
        await self.deployments.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    BridgeApp.launch_instance(argv)
