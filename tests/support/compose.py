"""docker-compose.yml brought up for real, on one node of a namespace swarm (an engine in a
network namespace of its own that can reach no registry), and the platform it runs seen as a
``Platform`` at the node's address, so the usual helpers (users, API, CLI) work against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.platform import IMAGE, REPO, Platform, User
from tests.support.swarm import Node

COMPOSE_FILE = REPO / "docker-compose.yml"
# The compose images share the environment image's tag (FLOYD_TEST_IMAGE), so parallel
# checkouts on one engine build images of their own.
TAG = IMAGE.rsplit(":", 1)[1] if ":" in IMAGE.rsplit("/", 1)[-1] else "latest"
HUB_IMAGE = f"floyd/hub:{TAG}"
DB_IMAGE = f"floyd/postgres:{TAG}"


def compose_command() -> list[str] | None:
    """Debian's docker-compose (1.29), or compose v2 as a plugin of the docker CLI."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def build_compose_images() -> list[str]:
    """The hub and PostgreSQL images on the host's engine, as `make compose-images` builds them."""
    for variant, tag in (("postgres", DB_IMAGE), ("hub", HUB_IMAGE)):
        proc = subprocess.run(["bash", str(REPO / "images" / "build.sh"), "--variant", variant, "--tag", tag],
                              cwd=REPO, capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            raise RuntimeError(f"images/build.sh --variant {variant} failed:\n{proc.stderr[-3000:]}")
    return [DB_IMAGE, HUB_IMAGE]


@dataclass
class ComposeStack:
    """One compose project on ``node``'s engine, with FLOYD_ROOT at ``root`` (the same path on the
    node: it shares this machine's mount namespace)."""

    node: Node
    root: Path
    project: str
    port: int = 8000
    password: str = "compose-test-db"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.node.url, "COMPOSE_PROJECT_NAME": self.project,
                "FLOYD_ROOT": str(self.root), "FLOYD_DOCKER_SOCK": str(self.node.sock),
                "FLOYD_HUB_IMAGE": HUB_IMAGE, "FLOYD_DB_IMAGE": DB_IMAGE, "FLOYD_HUB_PORT": str(self.port),
                "FLOYD_DB_PASSWORD": self.password, "FLOYD_COMPOSE_NETWORK": f"{self.project}-net"}

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = compose_command()
        assert command, "neither docker-compose nor docker compose is installed (scripts/ensure-system.sh compose)"
        proc = subprocess.run([*command, "-f", str(COMPOSE_FILE), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=REPO)
        if check and proc.returncode:
            raise RuntimeError(f"{' '.join(command)} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def logs(self, lines: int = 80) -> str:
        return self.run("logs", "--no-color", "--tail", str(lines), check=False, timeout=60).stdout

    def down(self) -> None:
        """The stack, its volumes and the containers its platform started (they carry its labels)."""
        self.run("down", "--volumes", "--timeout", "10", check=False)
        ids = self.node.docker("ps", "-aq", "--filter", "label=org.floyd.instance", check=False).stdout.split()
        if ids:
            self.node.docker("rm", "-f", *ids, check=False)


@dataclass
class ComposePlatform(Platform):
    """The platform docker-compose runs, reached at the node's address and published port."""

    stack: ComposeStack | None = None
    address: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.hub_port}/"

    def log_tail(self, lines: int = 80) -> str:
        return self.stack.logs(lines) if self.stack else ""

    def start(self, timeout: float = 180) -> None:
        """Wait until the hub and the bridge answer at the published port, then log in as the
        admin whose password the first start wrote, as `make up` prints it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:  # what floyd-up waits for before it prints the login
                if all(requests.get(self.url + path, timeout=5).status_code == 200
                       for path in ("hub/api", "services/floyd/api/v1/info")):
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            raise RuntimeError(f"the compose platform did not answer at {self.url} in {timeout}s:\n{self.log_tail()}")
        password = (self.root / "admin-password").read_text().strip()
        self.admin = User("admin", self.token_for_password("admin", password), self)
        self.users = {}
