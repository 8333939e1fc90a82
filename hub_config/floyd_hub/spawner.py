"""Workspace spawners: the profile form, the bridge's checks and mounts, GPUs by device id.

``WorkspaceSpawner`` runs each workspace as a Docker container (host networking and a
free port per workspace, the recipe verified in DESIGN.md); ``LocalWorkspaceSpawner`` gives
the same layout as plain processes where no Docker engine answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from docker.errors import APIError, ImageNotFound
from docker.types import DeviceRequest
from dockerspawner import DockerSpawner
from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

from floyd_hub.bridge_client import BridgeClient, BridgeError
from floyd_hub.profiles import read_form, render_form

NO_GPU_RUNTIME = ("could not select device driver", "nvidia-container-cli", "unknown or invalid runtime name: nvidia")


def instance_id() -> str:
    """A short id of this platform (of its FLOYD_ROOT), used in container names and labels."""
    root = str(Path(os.environ.get("FLOYD_ROOT", "var")).resolve())
    return hashlib.sha256(root.encode()).hexdigest()[:8]


class FloydSpawnerMixin(LoggingConfigurable):
    """What every Floyd spawner shares: the form, and asking the bridge before starting."""

    bridge_api_url = Unicode(
        help="The bridge's API URL as the hub reaches it directly (not through the proxy). "
        "Default: http://127.0.0.1:$FLOYD_BRIDGE_PORT/services/floyd/api/v1/."
    ).tag(config=True)
    bridge_token_file = Unicode(
        help="File with the API token of the hub service 'floyd-spawner' (created by the hub settings, mode 0600)."
    ).tag(config=True)
    floyd_url = Unicode(
        help="URL of the platform as workspaces reach it (FLOYD_URL inside them), e.g. http://127.0.0.1:8000/."
    ).tag(config=True)

    @default("bridge_api_url")
    def _default_bridge_api_url(self) -> str:
        return f"http://127.0.0.1:{os.environ.get('FLOYD_BRIDGE_PORT', '8001')}/services/floyd/api/v1/"

    @default("bridge_token_file")
    def _default_token_file(self) -> str:
        return str(Path(os.environ.get("FLOYD_ROOT", "var")).resolve() / "spawner-token")

    @default("floyd_url")
    def _default_floyd_url(self) -> str:
        return f"http://127.0.0.1:{os.environ.get('FLOYD_HUB_PORT', '8000')}/"

    spec: dict[str, Any] | None = None

    @property
    def bridge(self) -> BridgeClient:
        return BridgeClient(self.bridge_api_url, Path(self.bridge_token_file).read_text().strip())

    @property
    def _user_body(self) -> dict[str, Any]:
        return {"name": self.user.name, "admin": bool(self.user.admin)}  # type: ignore[attr-defined]

    async def floyd_options_form(self, spawner: Any = None) -> str:
        options = await self.bridge.call("GET", "workspaces/options", user=self.user.name,  # type: ignore[attr-defined]
                                          admin="1" if self.user.admin else "0")  # type: ignore[attr-defined]
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
        return {"user": self._user_body, "server_name": self.name, **options}  # type: ignore[attr-defined]

    async def prepare_workspace(self) -> dict[str, Any]:
        try:
            spec = await self.bridge.call("POST", "workspaces/prepare", self._request(dict(self.user_options or {})))  # type: ignore[attr-defined]
        except BridgeError as exc:
            raise RuntimeError(exc.message) from None
        self.spec = spec
        return spec

    async def release_workspace(self) -> None:
        try:
            await self.bridge.call("POST", "workspaces/release",
                                   {"user": self._user_body, "server_name": self.name})  # type: ignore[attr-defined]
        except BridgeError as exc:
            self.log.warning("Could not release GPUs of %s: %s", self._log_name, exc.message)  # type: ignore[attr-defined]

    async def wait_listening(self, ip: str, port: int) -> None:
        """Return once the single-user server answers, so JupyterHub's first readiness check
        passes at once instead of after its randomized back-off (about 1.5 s saved per start)."""
        base = getattr(getattr(self, "server", None), "base_url", None) or "/"
        url = f"http://{ip}:{port}{base}api"
        client = AsyncHTTPClient()
        deadline = time.monotonic() + float(self.start_timeout)  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            try:
                await client.fetch(url, request_timeout=2, raise_error=False)
                return
            except (OSError, HTTPClientError):  # not listening yet, or a request timed out
                await asyncio.sleep(0.05)

    def floyd_environment(self, spec: dict[str, Any]) -> dict[str, str]:
        return {**spec["env"], "FLOYD_URL": self.floyd_url}


class WorkspaceSpawner(FloydSpawnerMixin, DockerSpawner):
    """DockerSpawner with the Floyd form, mounts and GPUs; host networking on 127.0.0.1."""

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
        return f"floyd-{instance_id()}-{{username}}--{{servername}}"

    @default("notebook_dir")
    def _default_notebook_dir(self) -> str:
        return "/floyd"  # Lab's file browser shows code/, input/ and jobs/ side by side

    async def start(self) -> Any:
        spec = await self.prepare_workspace()
        self.image = spec["image"]
        self.volumes = {m["source"]: {"bind": m["target"], "mode": m["mode"]} for m in spec["mounts"]}
        self.mem_limit = spec["memory"]
        self.cpu_limit = spec["cpus"]
        self.environment = {**self.environment, **self.floyd_environment(spec)}
        self.extra_create_kwargs = {**self.extra_create_kwargs, "user": f"{spec['uid']}:{spec['gid']}",
                                    "working_dir": "/floyd/code",
                                    "labels": {"org.floyd.workspace": spec["holder"],
                                               "org.floyd.instance": instance_id(),
                                               "org.floyd.project": spec["project"]}}
        host_config: dict[str, Any] = {"network_mode": "host"} if self.network_name == "host" else {}
        if spec["gpu_devices"]:
            host_config["device_requests"] = [DeviceRequest(device_ids=spec["gpu_devices"], capabilities=[["gpu"]])]
        self.extra_host_config = {**self.extra_host_config, **host_config}
        if self.network_name == "host":
            self.port = random_port()
        try:
            ip, port = await super().start()
            await self.wait_listening(ip, port)
            return ip, port
        except ImageNotFound:
            await self.release_workspace()
            raise RuntimeError(f"The image {spec['image']} of environment {spec['environment']} is not built "
                               "on this host: an admin runs `make images`.") from None
        except APIError as exc:
            await self.release_workspace()
            text = str(exc)
            if any(marker in text for marker in NO_GPU_RUNTIME):
                raise RuntimeError(
                    f"{len(spec['gpu_devices'])} GPU(s) asked for, but this host has no NVIDIA container runtime "
                    "(nvidia-container-toolkit); start the workspace with 0 GPUs, or ask an admin to install it."
                ) from None
            raise

    async def get_ip_and_port(self) -> tuple[str, int]:  # type: ignore[override]
        if self.network_name == "host":
            return "127.0.0.1", self.port
        return await super().get_ip_and_port()

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            await self.release_workspace()


class LocalWorkspaceSpawner(FloydSpawnerMixin, LocalProcessSpawner):
    """No Docker engine: the workspace is a local process with the same layout through
    FLOYD_CODE / FLOYD_INPUT / FLOYD_JOBS, run as the hub's own user."""

    @default("options_form")
    def _default_form(self) -> Any:
        return self.floyd_options_form

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        home = Path(os.environ.get("FLOYD_ROOT", "var")).resolve() / "home" / self.user.name
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
        return env

    def make_preexec_fn(self, name: str) -> Any:
        return None  # run as the hub's user: there is no system account per platform user

    async def start(self) -> Any:
        spec = await self.prepare_workspace()
        root = Path(os.environ.get("FLOYD_ROOT", "var")).resolve()
        # The container layout, as a directory of links: code/, input/<mount>/, jobs/.
        top = root / "tmp" / "workspaces" / self.user.name / (self.name or "default")
        shutil.rmtree(top, ignore_errors=True)
        (top / "input").mkdir(parents=True)
        paths: dict[str, str] = {}
        for m in spec["mounts"]:
            rel = m["target"].removeprefix("/floyd/")
            (top / rel).symlink_to(m["source"])
            paths[m["target"]] = str(top / rel)
        env = self.floyd_environment(spec)
        env.update({"FLOYD_CODE": paths["/floyd/code"], "FLOYD_INPUT": str(top / "input"),
                    "FLOYD_JOBS": paths["/floyd/jobs"]})
        if spec["gpu_devices"]:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(spec["gpu_devices"])
        self.environment = {**self.environment, **env}
        self.notebook_dir = str(top)
        self.default_url = "/lab/tree/code"
        self.popen_kwargs = {**self.popen_kwargs, "cwd": paths["/floyd/code"]}
        if os.geteuid() == 0 and "--allow-root" not in self.args:
            self.args = [*self.args, "--allow-root"]
        ip, port = await super().start()
        await self.wait_listening(ip or "127.0.0.1", port)
        return ip, port

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            await self.release_workspace()
