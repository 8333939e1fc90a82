"""Jobs and endpoint replicas as Docker containers: the contract's RunSpec (mounts, environment, user,
limits, GPUs by device id, labels that let a restarted bridge find them) as ``containers.create``
options. No container gets the Docker socket."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import requests
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container, _create_container_args  # what containers.create uses
from traitlets import Unicode

from jobs_bridge.executors.base import (
    EngineUnavailable,
    Executor,
    ExecutorError,
    Found,
    FoundReplica,
    LineSplitter,
    RunSpec,
)
from jobs_bridge.executors.contract import (
    CONTAINER_USER,
    INSTANCE_LABEL,
    JOB_LABEL,
    REPLICA_LABEL,
    docker_options,
)

NO_GPU_RUNTIME = ("could not select device driver", "nvidia-container-cli", "unknown or invalid runtime name: nvidia")


@contextmanager
def engine() -> Iterator[None]:
    """Calls to the engine: its socket gone or a connection cut (dockerd stopping) becomes
    ``EngineUnavailable``, which callers tell apart from an answer about the job (NotFound …)."""
    try:
        yield
    except APIError:  # an answer (404, 409, 500): docker-py's errors are RequestExceptions too
        raise
    except requests.exceptions.RequestException as exc:
        raise EngineUnavailable() from exc


def mount_namespace_shared(program: str) -> bool:
    """True when ``program`` runs, visible to us, and every such process shares our mount namespace."""
    try:
        ours = os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        return False
    seen = False
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != program:
                continue
            if os.stat(proc / "ns" / "mnt").st_ino != ours:
                return False
        except OSError:
            continue
        seen = True
    return seen


def docker_available() -> bool:
    try:
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


class DockerExecutor(Executor):
    name = "docker"

    network = Unicode(
        "host", help="Docker network of job and endpoint-replica containers (default 'host'; docker-compose uses "
        "'floyd'). The app sets it from FLOYD_DOCKER_NETWORK unless the config does.",
    ).tag(config=True)

    def __init__(self, root: Path, instance: str, **kwargs: object) -> None:
        super().__init__(root, instance, **kwargs)  # instance: one platform's containers, when several share an engine
        self.client = docker.from_env(timeout=120)
        # Log streams and waits may be silent for hours (an idle endpoint, a quiet training
        # loop): their client has no read timeout, or docker-py would cut them after 120 s.
        self.stream_client = docker.from_env(timeout=None)
        # A job's output stream, attached between create and start as `docker run` does: its
        # first line needs no log request after the start (container id → response, frames).
        self.attached: dict[str, tuple[Any, Iterator[bytes]]] = {}

    def start(self, spec: RunSpec) -> str:
        with engine():
            return self._start(spec)

    def _start(self, spec: RunSpec) -> str:
        cid = self._create(spec)
        if spec.kind == "job":
            self._attach(cid)
        try:
            self.client.api.start(cid)
        except APIError as exc:
            text = str(exc)
            self._detach(cid)
            self.client.api.remove_container(cid, force=True)
            if any(marker in text for marker in NO_GPU_RUNTIME):
                raise ExecutorError(
                    f"{len(spec.gpu_devices)} GPU(s) asked for, but this host has no NVIDIA container runtime "
                    "(nvidia-container-toolkit): run on CPU, or ask an admin to install it."
                ) from None
            raise ExecutorError(f"Docker could not start the job: {exc.explanation or text}") from None
        return cid

    def _attach(self, cid: str) -> None:
        """Attach to the created container's stdout and stderr (no tty: multiplexed frames)."""
        api = self.stream_client.api
        try:
            response = api._post(api._url("/containers/{0}/attach", cid), stream=True,  # docker-py's attach() would inspect first
                                 headers={"Connection": "Upgrade", "Upgrade": "tcp"},
                                 params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 0})
            api._raise_for_status(response)
            self.attached[cid] = (response, api._read_from_socket(response, True, tty=False))
        except APIError:  # the log request after the start reads the same output
            pass

    def _detach(self, cid: str) -> None:
        """Let go of an attached stream that will not be read (start failed, stopped before)."""
        pair = self.attached.pop(cid, None)
        if pair is not None:
            pair[0].close()

    def create_options(self, spec: RunSpec) -> dict[str, Any]:
        """The contract's options plus this executor's own: name, network, a real PID 1."""
        # init: a real PID 1, so SIGTERM reaches the command (floyd stop is quick) and zombies are reaped
        return {**docker_options(spec, self.instance), "name": self.container_name(spec.name, spec.kind),
                "network_mode": self.network, "init": True, "detach": True}

    def _create(self, spec: RunSpec) -> str:
        """The container's id. docker-py's ``containers.create`` would inspect the new container
        to return a model, a round trip on every job's way to its first line: the same
        translation of the options, then the API call alone."""
        kwargs = {**self.create_options(spec), "image": spec.image, "command": spec.argv,
                  "version": self.client.api._version}
        try:
            return str(self.client.api.create_container(**_create_container_args(kwargs))["Id"])
        except ImageNotFound:
            raise ExecutorError(f"The environment image {spec.image} is not built on this host: an admin runs "
                                "`make images`.") from None
        except APIError as exc:
            if exc.status_code == 409:
                raise ExecutorError(f"A container for {spec.kind} {spec.name} exists already; remove it "
                                    f"(docker rm {self.container_name(spec.name, spec.kind)}).") from None
            raise

    def replica_address(self, name: str) -> tuple[str, str, int]:
        if self.network == "host":
            return super().replica_address(name)
        # On a user network (docker-compose) each replica has its own address, found by name.
        return "0.0.0.0", self.container_name(name, "replica"), 8000

    def container_name(self, name: str, kind: str = "job") -> str:
        prefix = "job" if kind == "job" else "ep"
        return f"floyd-{self.instance}-{prefix}-" + name.replace("/", "-").replace("@", "-")

    def _container(self, handle: str) -> Container:
        return self.client.containers.get(handle)

    def stream_logs(self, handle: str, spec_workdir: str, skip_lines: int, emit: Callable[[list[str]], None],
                    stopped: Callable[[], bool]) -> None:
        attached = self.attached.pop(handle, None)
        with engine():
            try:  # the API call alone: containers.get() would inspect the container first
                stream = attached[1] if attached and not skip_lines else \
                    self.stream_client.api.logs(handle, stream=True, follow=True, stdout=True, stderr=True)
            except NotFound:
                return
            lines = LineSplitter(skip_lines)
            try:
                for chunk in stream:
                    out = lines.feed(chunk)
                    if out:
                        emit(out)
                    if stopped():
                        return
            finally:
                if attached:
                    attached[0].close()
        out = lines.close()
        if out:
            emit(out)

    def wait(self, handle: str, spec_workdir: str) -> int:
        try:
            with engine():
                return int(self.stream_client.api.wait(handle)["StatusCode"])
        except NotFound:
            return -1

    def stop(self, handle: str, spec_workdir: str, grace: float = 10) -> None:
        try:
            with engine():
                self._container(handle).stop(timeout=int(grace))
        except NotFound:
            pass

    def cleanup(self, handle: str) -> None:
        self._detach(handle)
        try:
            with engine():
                self._container(handle).remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: a removal already in progress (two stops raced)
                raise

    def find(self) -> Iterator[Found]:
        with engine():
            found = self.client.containers.list(all=True, filters={"label": [f"{INSTANCE_LABEL}={self.instance}",
                                                                             JOB_LABEL]})
        for c in found:
            state = c.attrs.get("State", {})
            running = state.get("Status") in ("running", "created", "restarting")
            yield Found(int(c.labels[JOB_LABEL]), c.id, running, None if running else state.get("ExitCode"))

    def find_replicas(self) -> Iterator[FoundReplica]:
        with engine():
            found = self.client.containers.list(all=True, filters={"label": [f"{INSTANCE_LABEL}={self.instance}",
                                                                             REPLICA_LABEL]})
        for c in found:
            version, _, index = c.labels[REPLICA_LABEL].partition("/")
            running = c.attrs.get("State", {}).get("Status") in ("running", "created", "restarting")
            yield FoundReplica(int(version), int(index), c.id, running)

    def image_id(self, image: str) -> str:
        try:
            with engine():
                return str(self.client.images.get(image).id)
        except ImageNotFound:
            raise ExecutorError(f"The environment image {image} is not built on this host: an admin runs "
                                "`make images`.") from None

    def image_packages(self, image: str) -> list[str]:
        with engine():
            return self._image_packages(image)

    def _image_packages(self, image: str) -> list[str]:
        img = self.client.images.get(image)
        label = (img.labels or {}).get("org.floyd.packages", "")
        if label:
            return sorted(p for p in label.split(",") if p)
        out = self.client.containers.run(image, ["python", "-m", "pip", "list", "--format=freeze"], remove=True,
                                         network_mode="none", user=CONTAINER_USER)
        return sorted(line for line in out.decode().splitlines() if "==" in line)

    def sees_bridge_mounts(self) -> bool:
        """Only a Docker engine in the bridge's own mount namespace binds a mount the bridge made.
        Not so when the bridge runs in a container (docker-compose: the engine is the host's,
        not among our processes) or the engine is rootless (a namespace of its own)."""
        if urlparse(self.client.api.base_url).scheme != "http+docker":  # a unix socket; tcp is another host
            return False
        return mount_namespace_shared("dockerd")

    def system_stats(self, handle: str) -> dict[str, float]:
        try:
            stats = self._container(handle).stats(stream=False)
        except (NotFound, APIError, requests.exceptions.RequestException):
            return {}
        cpu, pre = stats.get("cpu_stats", {}), stats.get("precpu_stats", {})
        cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0)
        sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
        ncpu = cpu.get("online_cpus") or 1
        out = {"system/memory_bytes": float(stats.get("memory_stats", {}).get("usage", 0))}
        if sys_delta > 0:
            out["system/cpu_percent"] = 100.0 * cpu_delta / sys_delta * ncpu
        return out
