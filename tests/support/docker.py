"""Docker fixtures shared by the workspace, job and access tests: the engine client and the
environment image, built the way `make images` builds it (a no-op when it is current)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import docker
import pytest

from tests.support.platform import IMAGE, REPO


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def workspace_image(docker_client: docker.DockerClient) -> str:
    """Build the CPU environment the way `make images` does (a no-op when it is current)."""
    proc = subprocess.run(["bash", str(REPO / "images" / "build.sh"), "--variant", "cpu", "--tag", IMAGE], cwd=REPO,
                          capture_output=True, text=True, timeout=1800, env=dict(os.environ))
    if proc.returncode:
        raise RuntimeError(f"images/build.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    docker_client.images.get(IMAGE)
    return IMAGE
