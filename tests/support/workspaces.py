"""Workspace helpers: spawn through the hub's REST API, wait for readiness, stop, and find a
workspace's container (the environment image fixture is in tests/support/docker.py)."""

from __future__ import annotations

import hashlib
import time

from tests.support.platform import Platform, User


def workspace_filter(platform: Platform, user: User, server: str = "") -> dict:
    """Docker filters for one platform's workspace (several platforms share the engine)."""
    instance = hashlib.sha256(str(platform.root.resolve()).encode()).hexdigest()[:8]
    return {"label": [f"org.floyd.workspace=workspace:{user.name}/{server}", f"org.floyd.instance={instance}"]}


def spawn(platform: Platform, user: User, options: dict, server: str = "", timeout: float = 120) -> dict:
    """Start a workspace through the Hub API as an admin would, and wait until it is ready."""
    path = f"users/{user.name}/servers/{server}" if server else f"users/{user.name}/server"
    r = platform.hub_api("POST", path, json=options)
    assert r.status_code in (201, 202), r.text
    return wait_ready(platform, user, server, timeout)


def wait_ready(platform: Platform, user: User, server: str = "", timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = platform.hub_api("GET", f"users/{user.name}").json()
        srv = model.get("servers", {}).get(server)
        if srv and srv.get("ready"):
            return srv
        if srv is None and model.get("pending") is None and time.monotonic() > deadline - timeout + 5:
            raise AssertionError(f"the server of {user.name} stopped while starting:\n{platform.log_tail(60)}")
        time.sleep(0.5)
    raise AssertionError(f"the workspace of {user.name} was not ready in {timeout}s:\n{platform.log_tail(60)}")


def stop(platform: Platform, user: User, server: str = "", timeout: float = 60) -> None:
    path = f"users/{user.name}/servers/{server}" if server else f"users/{user.name}/server"
    platform.hub_api("DELETE", path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = platform.hub_api("GET", f"users/{user.name}").json()
        if server not in model.get("servers", {}):
            return
        time.sleep(0.5)
    raise AssertionError("the workspace did not stop")
