"""Workspace spawners: the profile form, the bridge's checks, and the container contract.

The bridge decides each workspace and answers with a contract RunSpec (mounts, environment,
user, labels, GPUs); the spawners only translate it. ``WorkspaceSpawner`` runs it as a Docker
container (host networking and a free port per workspace, the recipe verified in DESIGN.md)
through ``contract.docker_options``; ``LocalWorkspaceSpawner`` as a plain process through
``contract.link_tree`` + ``contract.local_env``, where no Docker engine answers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docker.errors import APIError, ImageNotFound
from dockerspawner import DockerSpawner
from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

from floyd_hub.bridge_client import BridgeClient, BridgeError
from floyd_hub.profiles import read_form, render_form
from jobs_bridge.executors.contract import RunSpec, docker_options, link_tree, local_env
from jobs_bridge.storage.paths import StorageLayout

NO_GPU_RUNTIME = ("could not select device driver", "nvidia-container-cli", "unknown or invalid runtime name: nvidia")


class FloydSpawnerMixin(LoggingConfigurable):
    """What every Floyd spawner shares: the form, and asking the bridge before starting."""

    floyd_root = Unicode(
        "var", help="The platform's storage root (FLOYD_ROOT), as the hub sees it: where the spawner's token, "
        "local workspaces' link trees and homes live, and what names this platform's containers. Default: ./var."
    ).tag(config=True)
    bridge_api_url = Unicode(
        "http://127.0.0.1:8001/services/floyd/api/v1/",
        help="The bridge's API URL as the hub reaches it directly (not through the proxy). "
        "Default: http://127.0.0.1:8001/services/floyd/api/v1/ (the bridge's default port).",
    ).tag(config=True)
    bridge_token_file = Unicode(
        help="File with the API token of the hub service 'floyd-spawner' (created by the hub settings, mode 0600). "
        "Default: <floyd_root>/spawner-token."
    ).tag(config=True)
    floyd_url = Unicode(
        "http://127.0.0.1:8000/",
        help="URL of the platform as workspaces reach it (FLOYD_URL inside them). Default: http://127.0.0.1:8000/.",
    ).tag(config=True)

    @default("bridge_token_file")
    def _default_token_file(self) -> str:
        return str(self.layout.secret_file("spawner-token"))

    @property
    def layout(self) -> StorageLayout:
        return StorageLayout(self.floyd_root)

    spec: dict[str, Any] | None = None  # the bridge's last answer to workspaces/prepare

    if TYPE_CHECKING:  # what the JupyterHub Spawner this is mixed into provides
        user: Any
        name: str
        user_options: dict[str, Any]
        start_timeout: int
        environment: dict[str, Any]
        args: list[str]
        _log_name: str

    @property
    def bridge(self) -> BridgeClient:
        return BridgeClient(self.bridge_api_url, Path(self.bridge_token_file).read_text().strip())

    @property
    def _user_body(self) -> dict[str, Any]:
        return {"name": self.user.name, "admin": bool(self.user.admin)}

    async def floyd_options_form(self, spawner: Any = None) -> str:
        options = await self.bridge.call("GET", "workspaces/options", user=self.user.name,
                                          admin="1" if self.user.admin else "0")
        return render_form(options)

    async def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        options = read_form(formdata)
        # Check now, so a bad choice comes back as a message on the form, not a failed spawn.
        try:
            await self.bridge.call("POST", "workspaces/prepare", {**self._request(options), "dry_run": True})
        except BridgeError as exc:
            raise web.HTTPError(exc.status if exc.status < 500 else 400, exc.message) from None
        return options

    def _request(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"user": self._user_body, "server_name": self.name, **options}

    async def prepare_workspace(self) -> dict[str, Any]:
        try:
            spec = await self.bridge.call("POST", "workspaces/prepare", self._request(dict(self.user_options or {})))
        except BridgeError as exc:
            raise RuntimeError(exc.message) from None
        self.spec = spec
        return spec

    async def release_workspace(self) -> None:
        try:
            await self.bridge.call("POST", "workspaces/release",
                                   {"user": self._user_body, "server_name": self.name})
        except BridgeError as exc:
            self.log.warning("Could not release GPUs of %s: %s", self._log_name, exc.message)

    async def wait_listening(self, ip: str, port: int) -> None:
        """Return once the single-user server answers, so JupyterHub's first readiness check
        passes at once instead of after its randomized back-off (about 1.5 s saved per start)."""
        base = getattr(getattr(self, "server", None), "base_url", None) or "/"
        url = f"http://{ip}:{port}{base}api"
        client = AsyncHTTPClient()
        deadline = time.monotonic() + float(self.start_timeout)
        while time.monotonic() < deadline:
            try:
                await client.fetch(url, request_timeout=2, raise_error=False)
                return
            except (OSError, HTTPClientError):  # not listening yet, or a request timed out
                await asyncio.sleep(0.05)

    async def stop(self, now: bool = False) -> None:
        """The Spawner's stop, then the workspace's GPUs go back to the bridge."""
        try:
            await super().stop(now=now)  # type: ignore[misc]  # the Spawner mixed in after this class has stop()
        finally:
            await self.release_workspace()

    def run_spec(self, prepared: dict[str, Any]) -> RunSpec:
        """The contract's RunSpec of a prepared workspace, with the platform's URL added."""
        spec = RunSpec.from_json(prepared["spec"])
        spec.env["FLOYD_URL"] = self.floyd_url
        return spec


class WorkspaceSpawner(FloydSpawnerMixin, DockerSpawner):
    """DockerSpawner with the Floyd form, mounts and GPUs; host networking on 127.0.0.1."""

    if TYPE_CHECKING:  # DockerSpawner's traits (the package has no type hints)
        extra_create_kwargs: dict[str, Any]
        extra_host_config: dict[str, Any]

    @default("options_form")
    def _default_form(self) -> Any:
        return self.floyd_options_form

    @default("network_name")
    def _default_network(self) -> str:
        return "host"

    @default("use_internal_ip")
    def _default_internal_ip(self) -> bool:
        return True

    @default("remove")
    def _default_remove(self) -> bool:
        return True

    @default("name_template")
    def _default_name_template(self) -> str:
        # Two platforms on one Docker engine (a test run beside `make up`) must not collide.
        return f"floyd-{self.layout.instance_id}-{{username}}--{{servername}}"

    @default("notebook_dir")
    def _default_notebook_dir(self) -> str:
        return "/floyd"  # Lab's file browser shows code/, input/ and jobs/ side by side

    def apply_spec(self, spec: RunSpec) -> None:
        """DockerSpawner's traits from the contract's Docker options (nothing is built here)."""
        options = docker_options(spec, self.layout.instance_id)
        self.image = spec.image
        self.volumes = options["volumes"]
        self.mem_limit = options["mem_limit"]
        self.cpu_limit = spec.cpus  # DockerSpawner turns it into a CPU quota (options["nano_cpus"] would clash)
        self.environment = {**self.environment, **options["environment"]}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "user": options["user"],
                                    "working_dir": options["working_dir"], "labels": options["labels"]}
        host_config: dict[str, Any] = {"network_mode": "host"} if self.network_name == "host" else {}
        if "device_requests" in options:
            host_config["device_requests"] = options["device_requests"]
        self.extra_host_config = {**self.extra_host_config, **host_config}

    async def start(self) -> Any:
        prepared = await self.prepare_workspace()
        self.apply_spec(self.run_spec(prepared))
        if self.network_name == "host":
            self.port = random_port()
        try:
            ip, port = await super().start()
            await self.wait_listening(ip, port)
            return ip, port
        except ImageNotFound:
            await self.release_workspace()
            raise RuntimeError(f"The image {prepared['image']} of environment {prepared['environment']} is not "
                               "built on this host: an admin runs `make images`.") from None
        except APIError as exc:
            await self.release_workspace()
            if any(marker in str(exc) for marker in NO_GPU_RUNTIME):
                raise RuntimeError(
                    f"{len(prepared['gpu_devices'])} GPU(s) asked for, but this host has no NVIDIA container runtime "
                    "(nvidia-container-toolkit); start the workspace with 0 GPUs, or ask an admin to install it."
                ) from None
            raise

    async def get_ip_and_port(self) -> tuple[str, int]:
        if self.network_name == "host":
            return "127.0.0.1", self.port
        return await super().get_ip_and_port()


class LocalWorkspaceSpawner(FloydSpawnerMixin, LocalProcessSpawner):
    """No Docker engine: the workspace is a local process with the same layout through
    FLOYD_CODE / FLOYD_INPUT / FLOYD_JOBS, run as the hub's own user."""

    if TYPE_CHECKING:  # LocalProcessSpawner's trait
        popen_kwargs: dict[str, Any]

    @default("options_form")
    def _default_form(self) -> Any:
        return self.floyd_options_form

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        home = self.layout.home(self.user.name)
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
        return env

    def make_preexec_fn(self, name: str) -> Any:
        return None  # run as the hub's user: there is no system account per platform user

    async def start(self) -> Any:
        spec = self.run_spec(await self.prepare_workspace())
        # The container's /floyd, as a directory of links: code/, input/<mount>/, jobs/.
        top = self.layout.workspace_links(self.user.name, self.name)
        shutil.rmtree(top, ignore_errors=True)  # links of an earlier start may name other inputs
        paths = link_tree(spec, top)
        self.environment = {**self.environment, **local_env(spec, paths, top)}
        self.notebook_dir = str(top)
        self.default_url = "/lab/tree/code"
        self.popen_kwargs = {**self.popen_kwargs, "cwd": paths["/floyd/code"]}
        if os.geteuid() == 0 and "--allow-root" not in self.args:
            self.args = [*self.args, "--allow-root"]
        ip, port = await super().start()
        await self.wait_listening(ip or "127.0.0.1", port)
        return ip, port
