"""GPUs by device id from the one allocator; the local-process spawner; idle culling."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest
import requests

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform, User, write_tree
from tests.support.workspaces import spawn, stop, workspace_filter


def leases(user: User) -> dict[str, str | None]:
    return {g["device"]: g["holder"] for g in user.platform.admin.api("GET", "gpus").json()["items"]}


@pytest.fixture(scope="module")
def keep_failed_platform(tmp_path_factory: pytest.TempPathFactory, workspace_image: str):
    """Failed workspace containers are kept (remove = False), so the test can inspect what
    the Docker API was asked for."""
    p = Platform.create(tmp_path_factory.mktemp("gpu"), bridge_config=TEST_BRIDGE_CONFIG,
                        hub_config="c.WorkspaceSpawner.remove = False\n")
    p.start()
    yield p
    p.stop()


def test_gpu_request_reaches_docker_and_fails_clearly(keep_failed_platform: Platform,
                                                      docker_client: docker.DockerClient) -> None:
    platform = keep_failed_platform
    user = platform.user("gpu-user")
    r = platform.hub_api("POST", f"users/{user.name}/server", json={"environment": "cuda", "gpus": 1})
    deadline = time.monotonic() + 60
    message = ""
    while time.monotonic() < deadline:
        model = platform.hub_api("GET", f"users/{user.name}").json()
        if r.status_code >= 400 or (not model.get("pending") and "" not in model.get("servers", {})):
            message = r.text + platform.log_tail(200)
            break
        time.sleep(0.5)
    assert "no NVIDIA container runtime" in message
    created = docker_client.containers.list(all=True, filters=workspace_filter(platform, user))
    assert created, "the container was never created"
    requests_ = created[0].attrs["HostConfig"]["DeviceRequests"]
    assert requests_ and requests_[0]["DeviceIDs"] == ["0"] and requests_[0]["Capabilities"] == [["gpu"]]
    created[0].remove(force=True)
    # The failed workspace holds no GPU.
    assert leases(user) == {"0": None, "1": None}


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory):
    p = Platform.create(tmp_path_factory.mktemp("local"), {"FLOYD_SPAWNER": "local", "FLOYD_CULL_TIMEOUT": "25",
                                                            "FLOYD_CULL_EVERY": "5"}, TEST_BRIDGE_CONFIG)
    p.start()
    yield p
    p.stop()


def test_local_spawner_layout_gpus_and_culling(local_platform: Platform, tmp_path: Path) -> None:
    p = local_platform
    user = p.user("loc")
    user.api("POST", "datasets", json={"name": "digits"})
    upload(FloydClient(p.url, user.token), "loc", "digits", write_tree(tmp_path / "d", {"a.txt": b"A"}))
    spawn(p, user, {"environment": "cuda", "gpus": 1, "project": "exp", "datasets": ["loc/digits"]})
    base = f"{p.url}user/loc/api/contents/"
    r = requests.get(base + "input/digits/a.txt", headers=user.headers, timeout=30)
    assert r.status_code == 200 and r.json()["content"] == "A"
    r = requests.put(base + "code/made-here.txt", headers=user.headers, timeout=30,
                     json={"type": "file", "format": "text", "content": "local"})
    assert r.status_code in (200, 201)
    assert (p.root / "projects" / "loc" / "exp" / "made-here.txt").read_text() == "local"
    # The GPU is leased to this workspace; nobody else can have both.
    assert leases(user) == {"0": "workspace:loc/", "1": None}
    r = user.api("POST", "workspaces/prepare", json={"environment": "cuda", "gpus": 2, "server_name": "two",
                                                      "dry_run": True})
    assert r.status_code == 409 and "free" in r.json()["message"]
    # Idle culling stops the workspace and frees the GPU.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if "" not in p.hub_api("GET", "users/loc").json().get("servers", {}):
            break
        time.sleep(1)
    else:
        raise AssertionError("the idle workspace was not culled")
    assert leases(user) == {"0": None, "1": None}
    # Start again, then stop by hand: the lease comes and goes with the workspace.
    spawn(p, user, {"environment": "cuda", "gpus": 2, "project": "exp"})
    assert leases(user) == {"0": "workspace:loc/", "1": "workspace:loc/"}
    stop(p, user)
    assert leases(user) == {"0": None, "1": None}
