"""Jobs as Docker Swarm services that run once, on any node of the swarm.

The bridge talks to one manager's engine. A job is a one-replica service with restart
condition ``none`` (scaling it to 0 is how it is stopped, and its task keeps the exit code),
built from the contract's RunSpec: the same mounts (FLOYD_ROOT is one shared filesystem at the
same path on every node), environment, user and labels as a container on one machine. CPU and
memory are reservations and limits, so Swarm places by them; GPUs are generic resources
(``node-generic-resources`` of NVIDIA device ids, the convention NVIDIA documents); environments
may be pinned to node labels. The queue, limits and fair share stay the bridge's: Swarm only
places. Host networking everywhere: this design never needs Swarm's routing mesh or VIPs.

A task whose node stops answering for ``lost_after`` seconds ends the job ``lost`` ("node X
went away"), so no job stays ``running`` on a machine that is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError, NotFound
from docker.types import (
    ContainerSpec,
    Placement,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)
from docker.types import Mount as DockerMount
from traitlets import Bool, Dict, Float, Unicode

from jobs_bridge.executors.base import (
    Executor,
    ExecutorError,
    Found,
    LineSplitter,
    RunEnded,
    RunSpec,
)
from jobs_bridge.executors.contract import ENVIRONMENT_LABEL, INSTANCE_LABEL, JOB_LABEL, identity_labels
from jobs_bridge.executors.docker import DockerExecutor, engine
from jobs_bridge.executors.swarm_nodes import generic_ids, list_nodes
from jobs_bridge.executors.swarm_nodes import set_availability as set_node_availability
from jobs_bridge.executors.swarm_probe import ENDED, ProbeResult, StorageProbe, needs_probe, root_label
from jobs_bridge.executors.swarm_replicas import SwarmReplicas, replica_service_name
from jobs_bridge.executors.swarm_stats import STATS_LABEL, StatsReader, with_sampler

NODE_GONE = ("down", "unknown", "disconnected")
STOP_GRACE_NS = 10 * 10**9
WAITING_FOR_NODE = "waiting for Docker Swarm to find a node with room"
FIRST_LINE_POLL = 0.1  # seconds between looks at a starting job's log, until its first line
FIRST_LINE_WAIT = 30.0  # seconds a job's log is looked at that often at most
READ_SHARE = 10.0  # after a whole-log read of T seconds, wait at least READ_SHARE × T
NO_GPU_RUNTIME_EXIT = 97  # the GPU guard's exit code: the node's engine gave the job no NVIDIA device


def gpu_guard(argv: list[str]) -> list[str]:
    """``argv``, run only where the NVIDIA runtime gave the container its devices. Swarm's generic
    resources only advertise GPUs: on a node without the runtime a "GPU" job would run on none."""
    check = (f'[ -e /dev/nvidiactl ] || {{ echo "floyd: no NVIDIA runtime on $(hostname)" >&2; '
             f'exit {NO_GPU_RUNTIME_EXIT}; }}; exec "$@"')
    return ["sh", "-c", check, "floyd-gpu-guard", *argv]


def constraints(labels: dict[str, str]) -> list[str]:
    """Environment node labels ({"gpu": "a100"}) as Swarm placement constraints."""
    return [f"node.labels.{k}=={v}" for k, v in sorted(labels.items())]


def service_spec(spec: RunSpec, instance: str, gpu_resource: str, placement: list[str],
                 guard: bool = True) -> dict[str, Any]:
    """The contract's RunSpec as ``create_service`` arguments: one task, never restarted. GPUs:
    the bridge's leased ids in NVIDIA_VISIBLE_DEVICES (what the NVIDIA runtime reads), counted as
    generic resources so that Swarm places the job where they are."""
    labels = identity_labels(spec, instance)
    env, argv = dict(spec.env), spec.argv
    if spec.gpu_devices:
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(spec.gpu_devices)
        argv = gpu_guard(argv) if guard else argv
    container = ContainerSpec(
        spec.image, argv, env=env, workdir=spec.working_dir, user=spec.user, labels=labels,
        mounts=[DockerMount(m.target, m.source, type="bind", read_only=m.read_only) for m in spec.mounts],
        init=True, stop_grace_period=STOP_GRACE_NS,
    )
    nano_cpus, memory = int(spec.cpus * 1e9), int(spec.memory)
    resources = Resources(cpu_limit=nano_cpus, mem_limit=memory, cpu_reservation=nano_cpus, mem_reservation=memory,
                          generic_resources={gpu_resource: len(spec.gpu_devices)} if spec.gpu_devices else None)
    template = TaskTemplate(container, resources=resources, restart_policy=RestartPolicy(condition="none"),
                            placement=Placement(constraints=placement), networks=["host"])
    return {"task_template": template, "labels": labels, "mode": ServiceMode("replicated", replicas=1)}


def assigned_gpus(task: dict[str, Any]) -> list[str]:
    """The generic resource ids Swarm assigned to a task."""
    return [str((r.get("NamedResourceSpec") or {}).get("Value")) for r in task.get("GenericResources") or task.get("AssignedGenericResources") or []
            if r.get("NamedResourceSpec")]


def advertised_gpus(nodes: list[dict[str, Any]], kind: str) -> dict[str, str]:
    """Advertised GPU id → the id of the node that advertises it (its dockerd's
    ``node-generic-resources``); the workspace spawner places by the same map."""
    return {gpu: str(node["ID"]) for node in nodes
            for gpu in generic_ids(node.get("Description", {}).get("Resources", {}).get("GenericResources"), kind)}


def node_holding(where: dict[str, str], devices: list[str]) -> str:
    """The one node that holds all of ``devices`` (a job's or a workspace's leased GPUs)."""
    missing = [d for d in devices if d not in where]
    if missing:
        raise ExecutorError(f"GPU {', '.join(missing)} is not advertised by any node of the swarm any more "
                            "(a node left, or its node-generic-resources changed); try again.")
    nodes = {where[d] for d in devices}
    if len(nodes) > 1:
        raise ExecutorError(f"The leased GPUs ({', '.join(devices)}) are on {len(nodes)} nodes; one run's GPUs "
                            "must be on one node: ask for fewer.")
    return nodes.pop()


class SwarmExecutor(SwarmReplicas, DockerExecutor):
    """Image ids and package lists come from the manager's engine, like DockerExecutor's."""

    name = "swarm"
    places_later = True  # a task may wait (pending) for a node with room: the job stays "starting"

    manager_url = Unicode(
        "", help="Docker API of a Swarm manager (unix:///var/run/docker.sock, tcp://10.0.0.1:2376). Default "
        "(empty): DOCKER_HOST or the default socket. The app sets it from FLOYD_SWARM_MANAGER.",
    ).tag(config=True)
    lost_after = Float(
        10.0, help="Seconds a node may be down (no heartbeat to the manager) while a job runs there before the job "
        "ends 'lost' with 'node X went away' (default 10).",
    ).tag(config=True)
    poll_interval = Float(0.5, help="Seconds between two looks at a job's task and log (default 0.5).").tag(config=True)
    stats_interval = Float(
        5.0, help="Seconds between two samples a job's container writes of its own CPU, memory and GPU use (a shell "
        "loop beside the command, into a file on the shared root that the bridge reads: no engine but the manager's "
        "is reachable). Default 5; 0 turns it off (then no system metrics for swarm jobs).",
    ).tag(config=True)
    gpu_resource = Unicode(
        "NVIDIA-GPU", help="The generic resource kind that nodes advertise their GPUs as (dockerd "
        "`node-generic-resources: [\"NVIDIA-GPU=GPU-<uuid>\"]`); default NVIDIA-GPU.",
    ).tag(config=True)
    node_labels = Dict(
        help="Placement per environment: {environment name: {label: value}}; a job in that environment runs only "
        "on nodes with those labels (`docker node update --label-add gpu=a100 NODE`). The app fills it from the "
        "environments' 'node_labels'.",
    ).tag(config=True)

    require_gpu_runtime = Bool(
        True, help="GPU jobs check, as they start, that their node's engine gave them NVIDIA devices, and end "
        "'failed' with a message naming the node where it did not (no nvidia-container-toolkit there). False only "
        "to test placement on machines without GPUs.",
    ).tag(config=True)

    probe_image = Unicode(
        "", help="Image of the storage probe task that runs on every node (any image with sh and cat). Default "
        "(empty): the app gives the default environment's image.",
    ).tag(config=True)

    def __init__(self, root: Path, instance: str, **kwargs: object) -> None:
        Executor.__init__(self, root, instance, **kwargs)  # not DockerExecutor's: the engine is the manager's
        url = self.manager_url or None
        self.client = docker.DockerClient(base_url=url, timeout=120) if url else docker.from_env(timeout=120)
        self.stream_client = self.client  # tasks and logs are polled: no read may block for long
        # Logs of a task on a node that went away would hang until the manager gives up.
        self.log_client = docker.DockerClient(base_url=url, timeout=10) if url else docker.from_env(timeout=10)
        self.ended: set[str] = set()  # services whose wait() returned: their log streams stop
        self.probe_lock = threading.Lock()
        self.spread_lock = threading.Lock()  # replicas are created one at a time (swarm_replicas.spread_away)
        self._stats_files: dict[str, str] = {}  # service id → the sample file its job's container writes
        self._stats = StatsReader(stale_after=max(30.0, 6 * self.stats_interval))
        self.refused: dict[str, str] = {}  # node name → why its storage probe failed
        try:
            self.check_storage(force=True)
        except Exception as exc:  # no swarm yet, or the manager is down: the first job probes again
            self.log.warning("Swarm storage probe at start failed: %s", exc)

    # -- storage ---------------------------------------------------------------------------------
    def check_storage(self, force: bool = False) -> list[ProbeResult]:
        """Probe the nodes (all with ``force``, else only when one joined since) for the shared root."""
        with self.probe_lock:
            if not force and not needs_probe(self.client.api.nodes(), self.instance):
                return []
            if not self.probe_image:
                raise ExecutorError("c.SwarmExecutor.probe_image is empty: set it to an image every node has "
                                    "(e.g. 'floyd/cpu:latest'), or list an environment (c.BridgeApp.environments).")
            results = StorageProbe(self.client, self.root, self.layout.swarm_probe, self.instance,
                                   self.probe_image).run()
            for r in results:
                if r.problem:
                    self.refused[r.name] = r.problem
                else:
                    self.refused.pop(r.name, None)
            return results

    # -- start -----------------------------------------------------------------------------------
    def start(self, spec: RunSpec) -> str:
        if spec.kind not in ("job", "replica"):
            raise ExecutorError(f"A {spec.kind} does not run on the swarm runtime's executor yet; use the docker "
                                "runtime for it (docs/admin.md, 'Several machines').")
        with engine():
            self.check_storage()
            wanted = dict(self.node_labels.get(spec.labels.get(ENVIRONMENT_LABEL, ""), {}))
            placement = [*constraints(wanted), f"node.labels.{root_label(self.instance)}==ok"]
            if spec.gpu_devices:
                placement.append(f"node.id=={self.gpu_node(spec.gpu_devices)}")
            if spec.kind == "job" and self.stats_interval > 0:
                spec = with_sampler(spec, self.stats_interval)
            try:
                if spec.kind != "replica":
                    return self.create_service(spec, placement)
                with self.spread_lock:  # one after the other: each sees where its siblings went
                    return self.create_service(spec, [*placement, *self.spread_away(spec, wanted)])
            except APIError as exc:
                if exc.status_code == 409:
                    raise ExecutorError(f"A service for job {spec.name} exists already; remove it "
                                        f"(docker service rm {self.service_name(spec)}).") from None
                if "not part of a swarm" in str(exc) or "not a swarm manager" in str(exc):
                    raise ExecutorError("The swarm runtime's engine is not a Swarm manager: run `docker swarm "
                                        "init` there, or set FLOYD_SWARM_MANAGER to a manager.") from None
                raise ExecutorError(f"Docker Swarm could not create the job: {exc.explanation or exc}") from None

    def create_service(self, spec: RunSpec, placement: list[str]) -> str:
        args = service_spec(spec, self.instance, self.gpu_resource, placement, self.require_gpu_runtime)
        handle = str(self.client.api.create_service(name=self.service_name(spec), **args)["ID"])
        self._stats_files[handle] = spec.labels.get(STATS_LABEL, "")
        return handle

    def gpu_devices(self) -> list[str]:
        return sorted(self.swarm_gpus())

    def swarm_gpus(self) -> dict[str, str]:
        """Advertised GPU id → the id of the node that advertises it."""
        with engine():
            return advertised_gpus(self.client.api.nodes(), self.gpu_resource)

    def gpu_node(self, devices: list[str]) -> str:
        """The one node that holds all of a job's leased GPUs."""
        return node_holding(self.swarm_gpus(), devices)

    def service_name(self, spec: RunSpec) -> str:
        if spec.kind == "replica":
            return replica_service_name(spec, self.instance)
        return f"floyd-{self.instance}-job-{spec.job_id}"

    # -- its task --------------------------------------------------------------------------------
    def task(self, handle: str) -> dict[str, Any] | None:
        """The service's newest task (None before Swarm made one); NotFound when the service is gone."""
        tasks: list[dict[str, Any]] = self.client.api.tasks(filters={"service": handle})
        if not tasks:
            self.client.api.inspect_service(handle)  # raises NotFound when it is gone
            return None
        newest: dict[str, Any] = max(tasks, key=lambda t: str(t.get("CreatedAt", "")))
        return newest

    def node_name(self, node_id: str) -> tuple[str, str, str]:
        """(hostname, address, state) of a node; ("", "", "down") once it was removed."""
        try:
            node = self.client.api.inspect_node(node_id)
        except NotFound:
            return node_id[:12], "", "down"
        status = node.get("Status", {})
        return node.get("Description", {}).get("Hostname", node_id[:12]), status.get("Addr", ""), status.get("State", "")

    def pending_reason(self, handle: str) -> str | None:
        """Swarm's own words while the task waits: "waiting for a node: no suitable node
        (insufficient resources on 3 nodes)"; None once it runs, ended or is gone."""
        try:
            with engine():
                task = self.task(handle)
        except NotFound:
            return None
        if task is None:
            return WAITING_FOR_NODE
        status = task.get("Status", {})
        state = status.get("State", "")
        if state == "running" or state in ENDED:
            return None
        if state in ("new", "pending", "allocated"):
            err = status.get("Err") or ""
            return f"{WAITING_FOR_NODE}: {err}" if err else WAITING_FOR_NODE
        where = self.node_name(task["NodeID"])[0] if task.get("NodeID") else "its node"
        if state == "preparing":
            return f"preparing on node {where} (getting its image)"
        return f"starting on node {where}"

    def wait(self, handle: str, spec_workdir: str) -> int:
        try:
            with engine():
                return self._wait(handle)
        except NotFound:
            return -1
        finally:
            self.ended.add(handle)

    def _wait(self, handle: str) -> int:
        down_since: float | None = None
        delay = 0.05
        while True:
            task = self.task(handle)
            status = (task or {}).get("Status", {})
            state = status.get("State", "")
            if state in ENDED:
                return self._exit_code(task or {})
            node_id = (task or {}).get("NodeID", "")
            if node_id and state in ("assigned", "accepted", "preparing", "starting", "running"):
                name, addr, node_state = self.node_name(node_id)
                if node_state in NODE_GONE:
                    down_since = down_since or time.monotonic()
                    if time.monotonic() - down_since >= self.lost_after:
                        where = f" ({addr})" if addr else ""
                        raise RunEnded(f"node {name}{where} went away while the job ran there", lost=True)
                else:
                    down_since = None
            time.sleep(delay)
            delay = min(delay * 1.5, self.poll_interval)

    def _exit_code(self, task: dict[str, Any]) -> int:
        status = task.get("Status", {})
        code = status.get("ContainerStatus", {}).get("ExitCode")
        if code == NO_GPU_RUNTIME_EXIT and assigned_gpus(task):
            name = self.node_name(task["NodeID"])[0]
            raise RunEnded(f"The job's GPU ({', '.join(assigned_gpus(task))}) is on node {name}, whose Docker engine "
                           "has no NVIDIA container runtime (nvidia-container-toolkit as its default runtime): it did "
                           f"not run. Run on CPU, or ask an admin to install it on {name}.", lost=False)
        if status.get("State") == "rejected" or (code is None and status.get("Err")):
            name = self.node_name(task["NodeID"])[0] if task.get("NodeID") else "no node"
            raise RunEnded(f"Docker Swarm could not start the job on {name}: {status.get('Err', 'rejected')}",
                           lost=False)
        return int(code) if code is not None else -1

    # -- logs ------------------------------------------------------------------------------------
    def stream_logs(self, handle: str, spec_workdir: str, skip_lines: int, emit: Callable[[list[str]], None],
                    stopped: Callable[[], bool]) -> None:
        """The service's log, read again every ``poll_interval`` (a followed service log never ends,
        even when its task has), less often when reading it takes long (READ_SHARE); new
        complete lines are emitted, the rest once the task ended."""
        emitted = skip_lines
        delay, t0 = 0.05, time.monotonic()
        while True:
            over = handle in self.ended
            read_at = time.monotonic()
            lines = self._log_lines(handle, final=over)
            read_seconds = time.monotonic() - read_at
            if lines is not None and len(lines) > emitted:
                emit(lines[emitted:])
                emitted = len(lines)
            if over or stopped():
                self.ended.discard(handle)
                return
            # Each read fetches the whole log, so a long one costs the manager in proportion:
            # waiting READ_SHARE times the read keeps that under a tenth of a core, at the price
            # of a slower tail for logs of many megabytes.
            time.sleep(max(delay, READ_SHARE * read_seconds))
            # Every FIRST_LINE_POLL s until the first line (a task takes a second or two to be
            # placed and started, and a look every poll_interval would add half of it), at most
            # FIRST_LINE_WAIT s; then every poll_interval.
            first = emitted == skip_lines and time.monotonic() - t0 < FIRST_LINE_WAIT
            delay = min(delay * 1.5, FIRST_LINE_POLL if first else self.poll_interval)

    def _log_lines(self, handle: str, final: bool) -> list[str] | None:
        try:
            chunks = self.log_client.api.service_logs(handle, stdout=True, stderr=True, follow=False)
            data = b"".join(chunks)
        except (NotFound, APIError, requests.exceptions.RequestException):
            return None
        split = LineSplitter(0)
        return split.feed(data) + (split.close() if final else [])

    # -- stop, cleanup, find ---------------------------------------------------------------------
    def stop(self, handle: str, spec_workdir: str, grace: float = 10) -> None:
        """Scale to 0: the task is stopped (SIGTERM, then SIGKILL after the grace) and keeps its exit code."""
        try:
            with engine():
                svc = self.client.api.inspect_service(handle)
                self.client.api.update_service(handle, version=svc["Version"]["Index"],
                                               mode=ServiceMode("replicated", replicas=0), fetch_current_spec=True)
        except NotFound:
            pass

    def cleanup(self, handle: str) -> None:
        self._stats.forget(self._stats_files.pop(handle, ""))
        try:
            with engine():
                self.client.api.remove_service(handle)
        except NotFound:
            pass

    def find(self) -> Iterator[Found]:
        with engine():
            services = self.client.api.services(filters={"label": [f"{INSTANCE_LABEL}={self.instance}", JOB_LABEL]})
            found = []
            for svc in services:
                task = self.task(svc["ID"]) or {}
                status = task.get("Status", {})
                running = status.get("State", "new") not in ENDED
                code = status.get("ContainerStatus", {}).get("ExitCode")
                found.append(Found(int(svc["Spec"]["Labels"][JOB_LABEL]), svc["ID"], running,
                                   None if running else code))
        yield from found

    def nodes(self) -> list[dict[str, Any]]:
        with engine():
            return list_nodes(self.client, self.instance, self.gpu_resource, self.refused)

    def set_availability(self, name: str, availability: str) -> dict[str, Any]:
        with engine():
            node_id = set_node_availability(self.client, name, availability)
            return next(n for n in self.nodes() if n["id"] == node_id)

    def sees_bridge_mounts(self) -> bool:
        """Mounts the bridge makes on its machine never reach the other nodes."""
        return False

    def system_stats(self, handle: str) -> dict[str, float]:
        """From the sample file the job's container writes (executors/swarm_stats.py): its engine
        may be another node's, which only the manager reaches."""
        path = self._stats_files.get(handle)
        if path is None:
            try:
                with engine():
                    labels = self.client.api.inspect_service(handle)["Spec"].get("Labels") or {}
            except (NotFound, APIError, ExecutorError):
                return {}
            path = self._stats_files[handle] = str(labels.get(STATS_LABEL, ""))
        return self._stats.read(path) if path else {}
