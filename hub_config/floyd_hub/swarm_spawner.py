"""Workspaces on a Docker Swarm: DockerSpawner's SwarmSpawner with the Floyd form, mounts and GPUs.

A workspace is a one-replica Swarm service built exactly as a swarm job is
(``executors.swarm.service_spec`` over the contract's RunSpec): the same bind mounts of the
shared FLOYD_ROOT, user, labels, CPU/memory reservations and limits, GPUs as generic resources
on the node that advertises the leased ids, environment node labels as constraints, and only
nodes whose storage probe passed. Swarm's routing mesh and VIPs need IPVS, which many kernels
lack, so the task uses host networking: the single-user server listens on a port of its node and
the Hub (and the proxy) reach it at ``<node address>:<port>``. A task whose node goes down is
reported stopped by ``poll()``; the service id in the Hub's state lets a restarted Hub find it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from docker.errors import APIError
from dockerspawner import SwarmSpawner
from jupyterhub.utils import random_port
from traitlets import Bool, Unicode, default

from floyd_hub.bridge_client import BridgeError
from floyd_hub.spawner import FloydSpawnerMixin
from jobs_bridge.executors.base import ExecutorError
from jobs_bridge.executors.contract import RunSpec
from jobs_bridge.executors.swarm import (
    NO_GPU_RUNTIME_EXIT,
    NODE_GONE,
    advertised_gpus,
    constraints,
    node_holding,
    service_spec,
)
from jobs_bridge.executors.swarm_probe import ENDED, root_label

STARTING = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting")


def node_address(node: dict[str, Any]) -> str:
    """The address other machines reach a node at. A manager may report 0.0.0.0 as its
    ``Status.Addr``; its ``ManagerStatus.Addr`` (address:2377) then says where it is."""
    addr = str(node.get("Status", {}).get("Addr", ""))
    if addr in ("", "0.0.0.0"):
        addr = str(node.get("ManagerStatus", {}).get("Addr", "")).rsplit(":", 1)[0]
    return addr


class SwarmWorkspaceSpawner(FloydSpawnerMixin, SwarmSpawner):
    """Each workspace a Swarm service on any node; reached at the node's address and a free port."""

    if TYPE_CHECKING:  # DockerSpawner's traits and helpers (the package has no type hints)
        port: int
        image: str
        object_name: str
        object_id: str
        client_kwargs: dict[str, Any]
        def docker(self, method: str, *args: Any, **kwargs: Any) -> Any: ...
        def get_env(self) -> dict[str, str]: ...
        async def get_command(self) -> list[str]: ...
        async def get_task(self) -> dict[str, Any] | None: ...
        async def remove_object(self) -> None: ...

    manager_url = Unicode(
        "", help="Docker API of a Swarm manager (unix:///var/run/docker.sock, tcp://10.0.0.1:2376) that the hub "
        "creates workspace services through. Default (empty): DOCKER_HOST or the default socket. The hub settings "
        "set it from FLOYD_SWARM_MANAGER, as the bridge's swarm runtime does.",
    ).tag(config=True)
    gpu_resource = Unicode(
        "NVIDIA-GPU", help="The generic resource kind nodes advertise their GPUs as (dockerd "
        "`node-generic-resources: [\"NVIDIA-GPU=GPU-<uuid>\"]`), as c.SwarmExecutor.gpu_resource; default NVIDIA-GPU.",
    ).tag(config=True)
    require_gpu_runtime = Bool(
        True, help="A GPU workspace checks, as it starts, that its node's engine gave it NVIDIA devices, and stops "
        "with a message naming the node where it did not. False only to test placement on machines without GPUs.",
    ).tag(config=True)

    run: RunSpec | None = None  # the contract of the workspace being started
    placement: list[str] | None = None  # its Swarm constraints

    @default("client_kwargs")
    def _default_client_kwargs(self) -> dict[str, Any]:
        return {"base_url": self.manager_url} if self.manager_url else {}

    @default("options_form")
    def _default_form(self) -> Any:
        return self.floyd_options_form

    @default("name_template")
    def _default_name_template(self) -> str:
        # A service name must end in a letter or digit; two platforms on one swarm must not collide.
        return f"floyd-{self.layout.instance_id}-{{username}}--{{servername}}-ws"

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # The image's CMD, named here: the manager need not hold the image to inspect it.
        return ["jupyterhub-singleuser"]

    @default("notebook_dir")
    def _default_notebook_dir(self) -> str:
        return "/floyd"

    @default("use_internal_ip")
    def _default_internal_ip(self) -> bool:
        return True  # no published port: the routing mesh is not used

    async def start(self) -> Any:
        prepared = await self.prepare_workspace()
        self.run = self.run_spec(prepared)
        self.image = self.run.image
        self.port = random_port()
        try:
            self.placement = await self.constraints_for(prepared)
            ip, port = await super().start()
            await self.wait_served(ip, port)
        except asyncio.CancelledError:  # JupyterHub's start_timeout (a task Swarm cannot place stays pending)
            await self.discard()
            raise
        except (ExecutorError, APIError, RuntimeError) as exc:
            await self.discard()
            if isinstance(exc, APIError):
                raise RuntimeError(f"Docker Swarm could not start the workspace: {exc.explanation or exc}") from None
            raise RuntimeError(str(exc)) from None
        return ip, port

    async def discard(self) -> None:
        """After a failed start: JupyterHub does not stop it, so remove the service and free the GPUs here."""
        try:
            if self.object_id:
                await self.remove_object()
                self.object_id = ""
        except APIError as exc:
            self.log.warning("Could not remove the service of %s: %s", self._log_name, exc)
        finally:
            await self.release_workspace()

    async def wait_served(self, ip: str, port: int) -> None:
        """Until the server answers; an error that says why as soon as its task ends instead (a
        task is 'running' before its command had a chance to fail)."""
        listening = asyncio.ensure_future(self.wait_listening(ip, port))
        try:
            while not listening.done():
                task = await self.get_task()
                if not task or task.get("Status", {}).get("State") not in (*STARTING, "running"):
                    raise RuntimeError(await self.why_ended(task))
                await asyncio.wait([listening], timeout=0.5)
        finally:
            listening.cancel()

    async def constraints_for(self, prepared: dict[str, Any]) -> list[str]:
        """The environment's node labels, nodes with a proven storage root, and the GPUs' node."""
        try:
            options = await self.bridge.call("GET", "workspaces/options", user=self.user.name,
                                              admin="1" if self.user.admin else "0")
        except BridgeError as exc:
            raise RuntimeError(exc.message) from None
        env: dict[str, Any] = next((e for e in options["environments"] if e["name"] == prepared["environment"]), {})
        placement = [*constraints(env.get("node_labels") or {}), f"node.labels.{root_label(self.layout.instance_id)}==ok"]
        if prepared["gpu_devices"]:
            nodes = await self.docker("nodes")
            placement.append(f"node.id=={node_holding(advertised_gpus(nodes, self.gpu_resource), prepared['gpu_devices'])}")
        return placement

    async def create_object(self) -> dict[str, Any]:
        """The workspace's service, from the contract like a swarm job's (JupyterHub's variables added)."""
        assert self.run is not None, "start() prepares the workspace first"
        run = RunSpec.from_json({**self.run.to_json(), "env": {**self.get_env(), **self.run.env},
                                 "argv": await self.get_command()})
        args = service_spec(run, self.layout.instance_id, self.gpu_resource, self.placement or [],
                            self.require_gpu_runtime)
        service: dict[str, Any] = await self.docker("create_service", name=self.object_name, **args)
        return service

    async def start_object(self) -> None:
        """Wait until the task runs; a task that ended or was rejected is an error that says why."""
        delay = 0.1
        while True:
            task = await self.get_task()
            status = (task or {}).get("Status", {})
            state = status.get("State", "new")
            if state == "running":
                return
            if task is None or state in ENDED or state == "rejected":
                raise RuntimeError(await self.why_ended(task))
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    async def why_ended(self, task: dict[str, Any] | None) -> str:
        """What a person can act on when the task ended before the server ran."""
        if task is None:
            return f"The workspace service {self.object_name} has no task any more."
        status = task.get("Status", {})
        where = await self.node_name(task)
        if status.get("ContainerStatus", {}).get("ExitCode") == NO_GPU_RUNTIME_EXIT and self.run and self.run.gpu_devices:
            return (f"The workspace's GPU ({', '.join(self.run.gpu_devices)}) is on node {where}, whose Docker engine "
                    "has no NVIDIA container runtime (nvidia-container-toolkit as its default runtime): start the "
                    f"workspace with 0 GPUs, or ask an admin to install it on {where}.")
        return (f"The workspace's task on {where} ended {status.get('State')}: "
                f"{status.get('Err') or status.get('Message') or 'no reason given'}")

    async def node_of(self, task: dict[str, Any]) -> dict[str, Any]:
        node: dict[str, Any] = await self.docker("inspect_node", task["NodeID"])
        return node

    async def node_name(self, task: dict[str, Any]) -> str:
        if not task.get("NodeID"):
            return "no node"
        return str((await self.node_of(task)).get("Description", {}).get("Hostname", task["NodeID"][:12]))

    async def get_ip_and_port(self) -> tuple[str, int]:
        """The address of the node the task runs on, and the port the server listens on there."""
        task = await self.get_task()
        if not task or not task.get("NodeID"):
            raise RuntimeError(f"The workspace service {self.object_name} has no task on a node.")
        node = await self.node_of(task)
        self.log.info("Workspace %s runs on node %s (%s:%s)", self._log_name,
                      node.get("Description", {}).get("Hostname"), node_address(node), self.port)
        return node_address(node), self.port

    async def poll(self) -> Any:
        """None while the task runs on a node that answers; a reason once it ended or its node went away."""
        task = await self.get_task()
        if not task:
            return 0
        status = task.get("Status", {})
        if status.get("State") not in (*STARTING, "running"):
            return f"task {status.get('State')}: {status.get('Err') or status.get('Message', '')}"
        if task.get("NodeID"):
            node = await self.node_of(task)
            if node.get("Status", {}).get("State") in NODE_GONE:
                name = node.get("Description", {}).get("Hostname", "")
                self.log.warning("Workspace %s: node %s went away", self._log_name, name)
                return f"node {name} went away"
        return None
