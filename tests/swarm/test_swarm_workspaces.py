"""Workspaces on the namespace swarm: spawned on a worker node, opened through the Hub in a real
browser, taken back by a restarted Hub, and shown stopped when their node goes away.

The JupyterLab image is loaded on node3 only (the "disk=ssd" node, where the "lab" environment
is pinned): loading it on every node would cost a minute each. The Hub's API listens on the
swarm bridge's host address, so a workspace on a node reaches it as it would on a real network.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.browser import login
from tests.support.docker import docker_client, workspace_image  # noqa: F401
from tests.support.platform import Platform
from tests.support.swarm import NamespaceSwarm

from .conftest import GPU_ID, SWARM_IMAGE

LAB_NODE = "node3"  # labelled disk=ssd by the session swarm


def bridge_config(lab_image: str) -> str:
    return f"""
c.SwarmExecutor.lost_after = 3
c.BridgeApp.environments = [
    {{"name": "base", "image": "{SWARM_IMAGE}", "cpus": 0.5, "memory": "256M"}},
    {{"name": "lab", "image": "{lab_image}", "cpus": 1, "memory": "1G", "node_labels": {{"disk": "ssd"}}}},
    {{"name": "gpu", "image": "{SWARM_IMAGE}", "gpu": True, "cpus": 0.5, "memory": "256M"}},
]
"""


@pytest.fixture(scope="module")
def lab_platform(swarm: NamespaceSwarm, workspace_image: str,  # noqa: F811
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    swarm.node(LAB_NODE).docker("load", "-q", "-i", str(NamespaceSwarm.image_tar(workspace_image)), timeout=900)
    p = Platform.create(tmp_path_factory.mktemp("swarm-lab"), bridge_config=bridge_config(workspace_image),
                        hub_config="c.Spawner.poll_interval = 2\n",
                        extra_env={"FLOYD_JOB_EXECUTOR": "swarm", "FLOYD_SWARM_MANAGER": swarm.manager.url,
                                   "FLOYD_HUB_API_IP": f"{swarm.subnet}.254"})
    p.start(timeout=180)
    try:
        yield p
    finally:
        p.stop()
        remove_services(swarm, p)


def remove_services(swarm: NamespaceSwarm, p: Platform) -> None:
    ids = swarm.manager.docker("service", "ls", "-q", "--filter", f"label=org.floyd.instance={p.instance}",
                               check=False).stdout.split()
    if ids:
        swarm.manager.docker("service", "rm", *ids, check=False)


def service_name(p: Platform) -> str:
    return f"floyd-{p.instance}-admin---ws"


def running_node(swarm: NamespaceSwarm, p: Platform) -> str:
    out = swarm.manager.docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}",
                               service_name(p), check=False)
    return out.stdout.strip()


def server_model(p: Platform, name: str = "") -> dict | None:
    return p.hub_api("GET", "users/admin").json().get("servers", {}).get(name)


def wait_server(p: Platform, ready: bool, timeout: float = 180, name: str = "") -> dict | None:
    """Until admin's server ``name`` is ready (``ready``) or gone (not ``ready``)."""
    deadline = time.monotonic() + timeout
    model = None
    while time.monotonic() < deadline:
        model = server_model(p, name)
        if (ready and model and model.get("ready")) or (not ready and model is None):
            return model
        time.sleep(0.5)
    raise AssertionError(f"admin's server not {'ready' if ready else 'gone'} in {timeout} s: {model}\n"
                         f"{p.log_tail(60)}")


def spawn_lab(p: Platform) -> dict:
    r = p.hub_api("POST", "users/admin/server", json={"environment": "lab", "project": "swarm-ws"})
    assert r.status_code in (201, 202), r.text
    model = wait_server(p, ready=True)
    assert model
    return model


def stop_lab(swarm: NamespaceSwarm, p: Platform) -> None:
    p.hub_api("DELETE", "users/admin/server")
    wait_server(p, ready=False, timeout=90)
    deadline = time.monotonic() + 60
    while swarm.manager.docker("service", "inspect", service_name(p), check=False).returncode == 0:
        assert time.monotonic() < deadline, "the workspace's service outlived its server"
        time.sleep(0.5)


def test_workspace_on_a_worker_opens_in_the_browser(page, swarm: NamespaceSwarm, lab_platform: Platform) -> None:
    p = lab_platform
    login(page, p, "admin", (p.root / "admin-password").read_text().strip())
    try:
        page.goto(p.url + "hub/spawn")
        page.wait_for_selector("#spawn_form #floyd-form")
        page.select_option("#environment", "lab")
        page.fill("#project", "swarm-ws")
        page.click('#spawn_form button[type="submit"]')
        page.wait_for_url(lambda url: "/user/admin/lab" in url, timeout=180_000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
        assert page.url.startswith(p.url), page.url  # through the Hub's proxy, not the node directly
        assert running_node(swarm, p) == LAB_NODE
        nodes = {n["name"]: n for n in p.admin.api("GET", "nodes").json()["items"]}
        assert nodes[LAB_NODE]["running_workspaces"] == 1, nodes  # the admin's nodes view counts it
        # The Hub keeps the service id in its state: what a restarted Hub finds the workspace by.
        state = (server_model(p) or {}).get("state") or {}
        service = swarm.manager.docker("service", "inspect", "--format", "{{.ID}}", service_name(p)).stdout.strip()
        assert state.get("object_id") == service, state
    finally:
        stop_lab(swarm, p)


def test_restarted_hub_takes_the_workspace_back(swarm: NamespaceSwarm, lab_platform: Platform) -> None:
    p = lab_platform
    spawn_lab(p)
    service = swarm.manager.docker("service", "inspect", "--format", "{{.ID}}", service_name(p)).stdout.strip()
    assert p.proc is not None
    os.killpg(p.proc.pid, signal.SIGKILL)  # a crash: no clean shutdown stops the servers
    p.proc.wait(10)
    p.start(timeout=180)
    model = wait_server(p, ready=True, timeout=60)
    assert model and (model.get("state") or {}).get("object_id") == service, model
    r = requests.get(p.url + "user/admin/api/status", headers=p.admin.headers, timeout=30)
    assert r.status_code == 200, r.text
    assert running_node(swarm, p) == LAB_NODE


def test_gpu_workspace_goes_to_the_gpu_node_and_says_it_has_no_runtime(swarm: NamespaceSwarm,
                                                                      lab_platform: Platform) -> None:
    """The leased GPU's node is the only place it may land; node2 has no NVIDIA runtime, so the
    spawn fails with a message naming the node, and the GPU is free again."""
    p = lab_platform
    # A start that fails within the Hub's first seconds is the POST's answer (JupyterHub's 500, the
    # message in its log), a later one ends the pending server: either way, the server is gone.
    p.hub_api("POST", "users/admin/servers/gpu", json={"environment": "gpu", "gpus": 1})
    wait_server(p, ready=False, timeout=120, name="gpu")
    log = p.log_tail(400)
    assert f"The workspace's GPU ({GPU_ID}) is on node node2" in log and "no NVIDIA container runtime" in log, log
    gpus = p.admin.api("GET", "gpus").json()["items"]
    assert [g["holder"] for g in gpus if g["device"] == GPU_ID] == [None], gpus
    gone = swarm.manager.docker("service", "inspect", f"floyd-{p.instance}-admin--gpu-ws", check=False)
    assert gone.returncode != 0, "the failed workspace's service was left behind"


def test_workspace_on_a_lost_node_shows_stopped(swarm: NamespaceSwarm, lab_platform: Platform) -> None:
    p = lab_platform
    if server_model(p) is None:
        spawn_lab(p)
    node = swarm.node(LAB_NODE)
    node.kill(signal.SIGKILL)
    try:
        wait_server(p, ready=False, timeout=90)  # the Hub polled: the node went away
        assert "node3 went away" in p.log_tail(400)
    finally:
        swarm.restart_node(node)
