"""docker-compose.yml up for real: the hub and PostgreSQL images built here with no registry,
loaded into one node namespace (an engine that can pull nothing), `docker-compose up -d` there,
a login through the published port, a job and an endpoint through the `floyd` CLI, a restart of
the whole stack, and the job, its log and the endpoint found again afterwards."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.compose import ComposePlatform, ComposeStack, build_compose_images, compose_command
from tests.support.platform import VENV_BIN, User, write_tree
from tests.support.serving import ASGI_OK_APP
from tests.support.swarm import NamespaceSwarm, Node

# The hub image carries Python, the floyd package and uvicorn: enough of an environment for a
# shell job and an ASGI endpoint, and it is on the node already (floyd/cpu would add ~900 MB).
BRIDGE_CONFIG = """
c.DeploymentManager.ready_timeout = 60
c.BridgeApp.environments = [
    {{"name": "cpu", "image": "{image}", "description": "the hub image", "cpus": 1, "memory": "1G"}},
]
"""


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    if os.geteuid() != 0 or not shutil.which("dockerd") or not shutil.which("nsenter"):
        pytest.skip("a node namespace needs root, dockerd and nsenter")
    if compose_command() is None:
        pytest.fail("neither docker-compose nor docker compose: `make test` installs it (scripts/ensure-system.sh)")
    images = build_compose_images()
    swarm = NamespaceSwarm(1, family="fco", net=212)
    try:
        swarm.up(images)
        yield swarm.manager
    finally:
        swarm.down()


@pytest.fixture(scope="module")
def compose(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposePlatform]:
    base = tmp_path_factory.mktemp("compose")
    root = base / "var"
    root.mkdir()
    stack = ComposeStack(node, root, project=f"floydtest{node.swarm.key}")
    (root / "floyd_bridge_config.py").write_text(BRIDGE_CONFIG.format(image=stack.env["FLOYD_HUB_IMAGE"]))
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    platform = ComposePlatform(root, base / "work", stack.port, 8001, env, stack=stack, address=node.address)
    try:
        stack.run("up", "-d")
        platform.start()
        yield platform
    finally:
        print(stack.logs(200))
        stack.down()


def job_state(user: User, number: int) -> dict:
    r = user.api("GET", f"jobs/{user.name}/compose-job/{number}")
    assert r.status_code == 200, r.text
    return r.json()


def test_compose_runs_a_job_and_an_endpoint_and_keeps_them_across_a_restart(
        compose: ComposePlatform, tmp_path: Path) -> None:
    assert compose.url.startswith("http://10.212."), compose.url  # the node's address, not loopback
    user = compose.user("composer")

    job_dir = write_tree(tmp_path / "job", {"hello.sh": b"echo compose job says $((6 * 7)) from $(hostname)\n"})
    user.cli("init", "compose-job", cwd=job_dir)
    ran = user.cli("run", "--cpu", "-f", "sh hello.sh", cwd=job_dir)
    assert "compose job says 42" in ran.stdout, ran.stdout + ran.stderr
    assert job_state(user, 1)["state"] == "succeeded"

    ep_dir = write_tree(tmp_path / "ep", {"app.py": ASGI_OK_APP})
    user.cli("init", "compose-ep", cwd=ep_dir)
    deployed = user.cli("run", "--mode", "serve", "--cpu", cwd=ep_dir)
    assert "Ready" in deployed.stdout, deployed.stdout + deployed.stderr
    url = f"{compose.url}services/floyd/endpoints/{user.name}/compose-ep/"
    assert requests.get(url, headers=user.headers, timeout=30).text == "ok"

    # The whole stack restarts: PostgreSQL keeps the records, FLOYD_ROOT the log, and the
    # endpoint's replica (a container of its own) is taken back by the new bridge.
    compose.stack.run("restart", "--timeout", "20")
    compose.start()
    user = User(user.name, user.token, compose)
    assert job_state(user, 1)["state"] == "succeeded"
    assert "compose job says 42" in user.cli("logs", "1", cwd=job_dir).stdout
    status = json.loads(user.cli("endpoint", "status", "compose-ep", "--json").stdout)
    assert status["serving_version"] == 1, status
    assert requests.get(url, headers=user.headers, timeout=30).text == "ok"
