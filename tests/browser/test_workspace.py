"""A person in a browser starts a workspace from the profile form and sees a dataset in JupyterLab.

Logs in, fills the spawn form (environment, project, a dataset at a version), waits for
JupyterLab, opens a notebook in /floyd/code and lists /floyd/input/<mount> from a cell, and
checks that the mount is read-only. On success the Lab page is saved as docs/img/workspace-lab.png when FLOYD_UPDATE_DOCS_IMAGES=1.
"""

from __future__ import annotations

import contextlib
import re
import time

import docker
import pytest
import requests

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.browser import OUTPUT, dismiss_news, login, save_docs_shot, stop_workspace
from tests.support.docker import docker_client, workspace_image  # noqa: F401
from tests.support.platform import Platform, write_tree

CELL = "!ls /floyd/input/browser-mnist/digits && touch /floyd/input/browser-mnist/x; echo rc=$?"


def wait_kernel_idle(platform: Platform, timeout: float = 90) -> None:
    """The notebook's kernel, as the workspace's Jupyter server sees it, has started and is idle."""
    deadline = time.monotonic() + timeout
    sessions: list = []
    while time.monotonic() < deadline:
        r = requests.get(platform.url + "user/admin/api/sessions", headers=platform.admin.headers, timeout=10)
        sessions = r.json() if r.ok else []
        if any(s.get("kernel", {}).get("execution_state") == "idle" for s in sessions):
            return
        time.sleep(0.5)
    raise AssertionError(f"no idle kernel in {timeout}s: {sessions}")


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
        # Lab opens on /floyd/code (the project; /floyd itself is not writable): a new notebook there.
        page.locator(".jp-Launcher-body .jp-LauncherCard[data-category='Notebook']").first.click()
        panel = page.locator(".jp-NotebookPanel:visible").first
        panel.locator(".jp-Notebook-cell .cm-content").first.wait_for()
        wait_kernel_idle(platform)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=30_000)
        panel.locator(".jp-Notebook-cell .cm-content").first.click()
        page.keyboard.type(CELL)
        page.keyboard.press("Shift+Enter")
        outputs = panel.locator(".jp-Cell-outputArea").first
        outputs.locator(".jp-OutputArea-output").first.wait_for(timeout=60_000)
        page.wait_for_function("el => /rc=\\d+/.test(el.innerText)", arg=outputs.element_handle(),
                               timeout=60_000)
        text = outputs.inner_text()
        assert "seven.txt" in text and "one.txt" in text, text
        assert "Read-only file system" in text, text
        rc = re.search(r"rc=(\d+)", text)
        assert rc and rc.group(1) != "0", text
        assert not (platform.root / "datasets" / "admin" / "browser-mnist" / "1" / "x").exists()
        # The notebook was created in the project on the host.
        assert list((platform.root / "projects" / "admin" / "browser-proj").glob("*.ipynb"))

        dismiss_news(page)
        page.keyboard.press("Escape")  # command mode: no blinking cursor in the picture
        save_docs_shot(page, "workspace-lab.png", full_page=True)
    except BaseException:
        # JupyterLab as it was, before stopping the server turns it into a "server unavailable" dialog
        # (the page fixture's own screenshot is taken after that).
        OUTPUT.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(OUTPUT / "test_spawn_form_to_jupyterlab-lab.png"), full_page=True)
        raise
    finally:
        stop_workspace(platform, docker_client)
    assert requests.get(platform.url + "hub/health", timeout=10).ok
