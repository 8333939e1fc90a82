"""A person in a browser starts a workspace from the profile form and sees a dataset in JupyterLab.

Logs in, fills the spawn form (environment, project, a dataset at a version), waits for
JupyterLab, opens a notebook in /floyd/code and lists /floyd/input/<mount> from a cell, and
checks that the mount is read-only. On success the Lab page is saved as docs/img/workspace-lab.png.
"""

from __future__ import annotations

import re
import time

import docker
import pytest
import requests

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.browser.conftest import OUTPUT
from tests.browser.test_pages import login
from tests.platform import REPO, Platform, write_tree
from tests.workspaces.conftest import docker_client, workspace_image  # noqa: F401

DOCS_SHOT = REPO / "docs" / "img" / "workspace-lab.png"
LABEL = "org.floyd.workspace=workspace:admin/"
CELL = "!ls /floyd/input/browser-mnist/digits && touch /floyd/input/browser-mnist/x; echo rc=$?"


def stop_workspace(platform: Platform, docker_client: docker.DockerClient, timeout: float = 90) -> None:  # noqa: F811
    """Stop admin's default server through the Hub API and wait until it and its container are gone."""
    platform.hub_api("DELETE", "users/admin/server")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = platform.hub_api("GET", "users/admin").json()
        if "" not in model.get("servers", {}) and model.get("pending") is None \
                and not docker_client.containers.list(filters={"label": LABEL}):
            return
        time.sleep(0.5)
    raise AssertionError(f"the admin's workspace did not stop in {timeout}s:\n{platform.log_tail(40)}")


@pytest.fixture
def mnist(platform: Platform, tmp_path) -> str:
    admin = platform.admin
    r = admin.api("POST", "datasets", json={"name": "browser-mnist", "description": "for the Lab test"})
    assert r.status_code == 201, r.text
    tree = write_tree(tmp_path / "mnist", {"digits/seven.txt": b"7\n", "digits/one.txt": b"1\n", "README": b"digits\n"})
    upload(FloydClient(platform.url, admin.token), "admin", "browser-mnist", tree, "browser test")
    return "admin/browser-mnist"


def test_spawn_form_to_jupyterlab(page, platform: Platform, mnist: str, workspace_image: str,  # noqa: F811
                                  docker_client: docker.DockerClient) -> None:  # noqa: F811
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    try:
        # The profile form, as JupyterHub shows it.
        page.goto(platform.url + "hub/spawn")
        page.wait_for_selector("#spawn_form #floyd-form")
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "spawn-form.png"), full_page=True)
        page.select_option("#environment", "cpu")
        page.fill("#project", "browser-proj")
        page.check(f'input[name="dataset"][value="{mnist}"]')
        page.select_option(f'select[name="version:{mnist}"]', "1")
        page.click('#spawn_form button[type="submit"]')

        # The hub's progress page, then JupyterLab once the container answers.
        page.wait_for_url(re.compile(r"/user/admin/lab"), timeout=150_000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
        page.wait_for_selector(".jp-DirListing-item", timeout=60_000)  # the file browser lists /floyd

        # A new notebook in /floyd/code (the project; /floyd itself is not writable).
        page.locator(".jp-DirListing-item", has_text="code").first.dblclick()
        page.wait_for_selector(".jp-FileBrowser-crumbs >> text=code")
        page.locator(".jp-ToolbarButtonComponent[data-command='launcher:create']").first.click()
        page.locator(".jp-Launcher-body .jp-LauncherCard[data-category='Notebook']").first.click()
        panel = page.locator(".jp-NotebookPanel:visible").first
        panel.locator(".jp-Notebook-cell .cm-content").first.wait_for()
        # Wait for the kernel to be idle so the cell runs at once.
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
        panel.locator(".jp-Notebook-cell .cm-content").first.click()
        page.keyboard.type(CELL)
        page.keyboard.press("Shift+Enter")
        output = panel.locator(".jp-OutputArea-output").first
        output.wait_for(timeout=60_000)
        page.wait_for_function(
            "el => /rc=\\d+/.test(el.innerText)", arg=output.element_handle(), timeout=60_000)
        text = panel.locator(".jp-OutputArea").first.inner_text()
        assert "seven.txt" in text and "one.txt" in text, text
        assert "Read-only file system" in text, text
        rc = re.search(r"rc=(\d+)", text)
        assert rc and rc.group(1) != "0", text
        assert not (platform.root / "datasets" / "admin" / "browser-mnist" / "1" / "x").exists()
        # The notebook was created in the project on the host.
        assert list((platform.root / "projects" / "admin" / "browser-proj").glob("*.ipynb"))

        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SHOT), full_page=True)
    finally:
        stop_workspace(platform, docker_client)
    assert requests.get(platform.url + "hub/health", timeout=10).ok
