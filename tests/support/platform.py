"""A real platform for tests: JupyterHub + configurable-http-proxy + the Floyd bridge.

Started the way ``make up`` starts it (``floyd-up``), on free ports and a temporary
FLOYD_ROOT, so the tests exercise the same wiring users run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The environment image the tests build and run. FLOYD_TEST_IMAGE gives a checkout a tag of its
# own, so that two checkouts testing on one Docker engine do not rebuild each other's image.
IMAGE = os.environ.get("FLOYD_TEST_IMAGE", "floyd/cpu:latest")


# Two pretend GPUs and an environment that allows them: there is no GPU here, so the tests
# check what reaches the Docker API (device ids) and the error when no GPU runtime exists.
TEST_BRIDGE_CONFIG = """
c.GpuAllocator.devices = ["0", "1"]
c.DeploymentManager.ready_timeout = 30
c.BridgeApp.environments = [
    {"name": "cpu", "image": "@IMAGE@", "description": "CPU", "gpu": False, "cpus": 1, "memory": "2G"},
    {"name": "cuda", "image": "@IMAGE@", "description": "GPU test environment", "gpu": True,
     "cpus": 1, "memory": "2G"},
]
""".replace("@IMAGE@", IMAGE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """``n`` different free ports: each socket stays bound until all are chosen (two calls of
    free_port() may get the same port back, and a hub then cannot bind its API port)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class User:
    name: str
    token: str
    platform: Platform

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.platform.api(method, path, token=self.token, **kwargs)

    def cli(self, *args: str, input: str | None = None, cwd: Path | None = None,
            check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.platform.cli(self, *args, input=input, cwd=cwd, check=check, env=env)


@dataclass
class Platform:
    root: Path
    workdir: Path
    hub_port: int
    bridge_port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    users: dict[str, User] = field(default_factory=dict)
    admin: User | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}/"

    @property
    def api_url(self) -> str:
        return self.url + "services/floyd/api/v1/"

    @property
    def bridge_direct(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}/services/floyd/api/v1/"

    @classmethod
    def create(cls, base: Path, extra_env: dict[str, str] | None = None, bridge_config: str = "",
               hub_config: str = "") -> Platform:
        root = base / "var"
        root.mkdir(parents=True, exist_ok=True)
        if bridge_config:
            (root / "floyd_bridge_config.py").write_text(bridge_config)
        if hub_config:
            (root / "jupyterhub_config_local.py").write_text(hub_config)
        workdir = base / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        hub_port, bridge_port, hub_api_port, proxy_api_port = free_ports(4)
        env = dict(os.environ)
        env.update({
            "FLOYD_ROOT": str(root),
            "FLOYD_HUB_PORT": str(hub_port),
            "FLOYD_BRIDGE_PORT": str(bridge_port),
            "FLOYD_HUB_API_PORT": str(hub_api_port),
            "FLOYD_PROXY_API_PORT": str(proxy_api_port),
            "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
        })
        env.update(extra_env or {})
        return cls(root, workdir, hub_port, bridge_port, env)

    def start(self, timeout: float = 90) -> None:
        self.log_path = self.workdir / "platform.log"
        log = open(self.log_path, "ab")
        offset = log.tell()  # a restart on the same base appends: only this start's lines count
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "floyd-up"), "--root", str(self.root), "--port", str(self.hub_port)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"floyd-up exited early:\n{self.log_tail()}")
            if b"is up at" in self.log_path.read_bytes()[offset:]:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"the platform did not start in {timeout}s:\n{self.log_tail()}")
        password = (self.root / "admin-password").read_text().strip()
        self.admin = User("admin", self.token_for_password("admin", password), self)

    def stop(self, remove_endpoints: bool = True) -> float:
        """Ctrl-C, as a user would; returns how long it took. Endpoint replicas outlive the
        platform by design (the next start takes them back): a test run removes its own."""
        t0 = time.monotonic()
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        took = time.monotonic() - t0
        if remove_endpoints:
            self.remove_replicas()
        return took

    @property
    def instance(self) -> str:
        """The bridge's instance id (labels of its containers): from its storage root."""
        return hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]

    def remove_replicas(self) -> None:
        self._remove_containers("org.floyd.replica")
        self._stop_local_replicas()

    def _stop_local_replicas(self) -> None:
        """Local-executor replicas are process groups of their own, so Ctrl-C of the platform
        leaves them running too (a benchmark on the local executor used to leave them behind)."""
        from jobs_bridge.executors.local import LocalExecutor

        local = LocalExecutor(self.root, self.instance)
        for found in local.find_replicas():
            if found.running:
                local.stop(found.handle, "", grace=3)

    def remove_jobs(self) -> None:
        """Job containers outlive the platform too (a test that fails mid-way leaves them running)."""
        self._remove_containers("org.floyd.job-id")

    def _remove_containers(self, label: str) -> None:
        try:
            import docker

            client = docker.from_env(timeout=30)
            for c in client.containers.list(all=True, filters={"label": [f"org.floyd.instance={self.instance}",
                                                                         label]}):
                c.remove(force=True)
        except Exception:  # no engine (local executor): they were processes of the platform
            pass

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def token_for_password(self, name: str, password: str) -> str:
        r = requests.post(f"{self.url}hub/api/users/{name}/tokens",
                          json={"auth": {"username": name, "password": password}, "note": "tests"}, timeout=30)
        r.raise_for_status()
        return r.json()["token"]

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        assert self.admin
        return requests.request(method, f"{self.url}hub/api/{path}", headers=self.admin.headers, timeout=30, **kwargs)

    def user(self, name: str, admin: bool = False) -> User:
        """A Hub user with an API token (created through the Hub's REST API)."""
        if name in self.users:
            return self.users[name]
        r = self.hub_api("POST", f"users/{name}", json={"admin": admin})
        assert r.status_code in (201, 409), r.text
        token = self.hub_api("POST", f"users/{name}/tokens", json={"note": "tests"}).json()["token"]
        user = User(name, token, self)
        self.users[name] = user
        return user

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"token {token}"
        return requests.request(method, self.api_url + path.lstrip("/"), headers=headers,
                                timeout=kwargs.pop("timeout", 120), **kwargs)

    def cli(self, user: User | None, *args: str, input: str | None = None, cwd: Path | None = None,
            check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        home = self.workdir / "home" / (user.name if user else "anonymous")
        (home / "config").mkdir(parents=True, exist_ok=True)
        run_env = {k: v for k, v in self.env.items() if not k.startswith(("JUPYTERHUB_", "FLOYD_"))}
        run_env.update({
            "FLOYD_CONFIG_DIR": str(home / "config"),
            "FLOYD_CACHE_DIR": str(home / "cache"),
            "COLUMNS": "200",
        })
        if user:
            run_env["FLOYD_URL"] = self.url
            run_env["FLOYD_TOKEN"] = user.token
        run_env.update(env or {})
        proc = subprocess.run([str(VENV_BIN / "floyd"), *args], input=input, cwd=cwd or home, env=run_env,
                              capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"floyd {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def bridge_pid(self) -> int:
        """The bridge JupyterHub started for this platform (found by its FLOYD_ROOT)."""
        out = subprocess.run(["pgrep", "-f", "jobs_bridge"], capture_output=True, text=True)
        for pid in out.stdout.split():
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"FLOYD_ROOT={self.root}".encode() in environ:
                return int(pid)
        raise RuntimeError("bridge process not found")

    def wait_bridge(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.api_url + "info", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"bridge did not come back:\n{self.log_tail()}")


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return root


def built(path: Path, timeout: float = 60.0) -> Path:
    """``path`` inside a version's tree, once the tree exists: the bridge builds it after the
    commit has answered (jobs_bridge/storage/trees.py)."""
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path


def as_json(proc: subprocess.CompletedProcess[str]):
    return json.loads(proc.stdout)
