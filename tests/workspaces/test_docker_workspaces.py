"""Real workspace containers spawned through the real hub and proxy, inspected through the
Jupyter server's contents API and the Docker API."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
import requests

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.platform import Platform, User, write_tree
from tests.support.workspaces import spawn, stop, workspace_filter


@pytest.fixture(scope="module")
def ws_user(platform: Platform, workspace_image: str, tmp_path_factory: pytest.TempPathFactory) -> User:
    user = platform.user("wsuser")
    user.api("POST", "datasets", json={"name": "mnist"})
    tree = write_tree(tmp_path_factory.mktemp("mnist"), {"train/0.txt": b"zero", "labels.csv": b"0\n"})
    upload(FloydClient(platform.url, user.token), "wsuser", "mnist", tree)
    return user


def contents(platform: Platform, user: User, path: str, server: str = "", **kwargs) -> requests.Response:
    base = f"{platform.url}user/{user.name}/{server + '/' if server else ''}api/contents/"
    method = kwargs.pop("method", "GET")
    return requests.request(method, base + path, headers=user.headers, timeout=30, **kwargs)


def test_workspace_mounts_through_the_proxy(platform: Platform, ws_user: User, docker_client: docker.DockerClient) -> None:
    spawn(platform, ws_user, {"environment": "cpu", "project": "digits",
                              "datasets": [{"ref": "wsuser/mnist:1", "mount": "mnist"}]})
    try:
        # The dataset file is readable at /floyd/input/mnist.
        r = contents(platform, ws_user, "input/mnist/train/0.txt")
        assert r.status_code == 200 and r.json()["content"] == "zero"
        # /floyd/input is read-only: writing there fails and leaves nothing behind.
        r = contents(platform, ws_user, "input/mnist/new.txt", method="PUT",
                     json={"type": "file", "format": "text", "content": "x"})
        assert r.status_code >= 400
        assert not (platform.root / "datasets" / "wsuser" / "mnist" / "1" / "new.txt").exists()
        # A file written to /floyd/code lands in the project's directory on the host, as uid 1000.
        r = contents(platform, ws_user, "code/notes.txt", method="PUT",
                     json={"type": "file", "format": "text", "content": "hello from the workspace"})
        assert r.status_code in (200, 201), r.text
        host_file = platform.root / "projects" / "wsuser" / "digits" / "notes.txt"
        assert host_file.read_text() == "hello from the workspace"
        assert host_file.stat().st_uid == 1000

        container = docker_client.containers.list(filters=workspace_filter(platform, ws_user))[0]
        attrs = container.attrs
        mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in attrs["Mounts"]}
        assert mounts["/floyd/code"] == (str(platform.root / "projects" / "wsuser" / "digits"), True)
        assert mounts["/floyd/input/mnist"] == (str(platform.root / "datasets" / "wsuser" / "mnist" / "1"), False)
        assert mounts["/floyd/jobs"][1] is False
        assert set(mounts) == {"/floyd/code", "/floyd/input/mnist", "/floyd/jobs"}  # no Docker socket, no other host path
        assert attrs["HostConfig"]["NetworkMode"] == "host"
        assert attrs["Config"]["User"] == "1000:100"

        # The CLI inside works with no login: the workspace token carries access to the bridge.
        code, out = container.exec_run(["floyd", "data", "versions", "mnist", "--json"])
        assert code == 0, out.decode()
        assert b'"ref": "wsuser/mnist:1"' in out
        code, out = container.exec_run(["floyd", "data", "ls", "mnist:1"])
        assert code == 0 and b"labels.csv" in out
    finally:
        stop(platform, ws_user)
    assert not docker_client.containers.list(filters=workspace_filter(platform, ws_user))


def test_named_servers_side_by_side(platform: Platform, ws_user: User) -> None:
    spawn(platform, ws_user, {"environment": "cpu", "project": "first"}, server="one")
    spawn(platform, ws_user, {"environment": "cpu", "project": "second"}, server="two")
    try:
        assert contents(platform, ws_user, "code/x.txt", server="one", method="PUT",
                        json={"type": "file", "format": "text", "content": "1"}).status_code in (200, 201)
        assert contents(platform, ws_user, "code", server="two").json()["content"] == []
        assert (platform.root / "projects" / "wsuser" / "first" / "x.txt").exists()
    finally:
        stop(platform, ws_user, "one")
        stop(platform, ws_user, "two")


def test_bad_choices_are_refused_with_a_message(platform: Platform, ws_user: User) -> None:
    other = platform.user("ws-other")
    other.api("POST", "datasets", json={"name": "private-one"})
    cases = [
        ({"environment": "my-own-image:latest"}, 422, "Unknown environment"),
        ({"environment": "cpu", "gpus": 1}, 422, "does not allow GPUs"),
        ({"environment": "cpu", "gpus": 99}, 422, "from 0 to"),
        ({"environment": "cpu", "datasets": [{"ref": "ws-other/private-one"}]}, 404, "not found"),
        ({"environment": "cpu", "datasets": [{"ref": "wsuser/mnist:1", "mount": "../../etc"}]}, 400, "mount name"),
        ({"environment": "cpu", "project": "../x"}, 400, "project name"),
        ({"environment": "cpu", "memory": "lots"}, 422, "memory"),
        ({"environment": "cpu", "cpus": 1000}, 422, "cpus"),
        ({"environment": "cpu", "user": {"name": "ws-other"}}, 403, "your own"),
    ]
    for options, status, words in cases:
        r = ws_user.api("POST", "workspaces/prepare", json={**options, "dry_run": True})
        assert r.status_code == status, (options, r.text)
        assert words in r.json()["message"], (options, r.text)


def test_new_job_outputs_appear_in_a_running_workspace(platform: Platform, ws_user: User, tmp_path: Path) -> None:
    """/floyd/jobs is the project's job directory, read-only: a job finished after the workspace
    started shows up there without a restart."""
    from tests.support.jobs import submit, wait_state

    spawn(platform, ws_user, {"environment": "cpu", "project": "shared"})
    try:
        job = submit(ws_user, "shared", {"train.py": b"open('/floyd/output/model.txt','w').write('trained')\n"},
                     tmp_path, command="python train.py")["job"]
        wait_state(ws_user, job["id"], {"succeeded"}, timeout=90)
        r = contents(platform, ws_user, f"jobs/{job['number']}/output/model.txt")
        assert r.status_code == 200 and r.json()["content"] == "trained"
        r = contents(platform, ws_user, f"jobs/{job['number']}/output/new.txt", method="PUT",
                     json={"type": "file", "format": "text", "content": "x"})
        assert r.status_code >= 400  # read-only in the workspace
    finally:
        stop(platform, ws_user)
