"""Playwright driving Debian's chromium (Playwright's own browser download does not work here).

The ``browser`` and ``page`` fixtures are imported by tests/conftest.py for every folder: one
browser per session (a second sync_playwright in the same session fails), whichever tests use it.
The helpers (login, dismiss_news, stop_workspace) are what a person does in the pages."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import docker

    from tests.support.platform import Platform

CHROMIUM = os.environ.get("FLOYD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "browser"
# `FLOYD_UPDATE_DOCS_IMAGES=1 make test` refreshes docs/img/; a plain run leaves the tree as it was
UPDATE_DOCS_IMAGES = os.environ.get("FLOYD_UPDATE_DOCS_IMAGES") == "1"
ADMIN_WORKSPACE_LABEL = "org.floyd.workspace=workspace:admin/"


def save_docs_shot(page: object, name: str, full_page: bool = False) -> Path:
    """Screenshot a page the docs show: into docs/img/NAME when FLOYD_UPDATE_DOCS_IMAGES=1, else
    into test-output/browser/ (a test run must not change tracked files). Returns the path."""
    path = (REPO / "docs" / "img" if UPDATE_DOCS_IMAGES else OUTPUT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} not found: `make test` installs Debian's chromium package.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        pg.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)
    context.close()


def login(page, platform: Platform, username: str, password: str) -> None:
    page.goto(platform.url + "hub/login")
    page.fill("#username_input", username)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url("**/hub/**")


def dismiss_news(page, timeout: float = 5_000) -> None:
    """Answer JupyterLab's "get notified about Jupyter news?" toast, which covers part of the page."""
    # Imported here: every test session loads this module (tests/conftest.py), few use a browser.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    no = page.locator(".jp-toastContainer button.jp-toast-button", has_text=re.compile(r"^\s*No\s*$"))
    try:
        no.first.click(timeout=timeout)
    except PlaywrightTimeout:
        pass


def stop_workspace(platform: Platform, docker_client: docker.DockerClient, timeout: float = 90) -> None:
    """Stop admin's default server through the Hub API and wait until it and its container are gone."""
    platform.hub_api("DELETE", "users/admin/server")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = platform.hub_api("GET", "users/admin").json()
        if "" not in model.get("servers", {}) and model.get("pending") is None \
                and not docker_client.containers.list(filters={"label": ADMIN_WORKSPACE_LABEL}):
            return
        time.sleep(0.5)
    raise AssertionError(f"the admin's workspace did not stop in {timeout}s:\n{platform.log_tail(40)}")
