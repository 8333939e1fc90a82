"""Inside a real workspace spawned through the hub: "Run as job", the Jobs panel and ``%floyd_run``.

One workspace (admin, project ``lab-jobs``, environment cpu) is spawned through the Hub API for
the module and stopped at its end. In it:

* a notebook in /floyd/code is opened in JupyterLab, the notebook toolbar's "Run as job" button
  opens the dialog, Run submits; the Jobs panel selects the new job and follows it to succeeded
  with its log, and "Open output" shows result.txt, which the job wrote, in jobs/<n>/output.
  On success the page is saved as docs/img/run-as-job.png when FLOYD_UPDATE_DOCS_IMAGES=1.
* a notebook cell ``%load_ext floyd`` + ``%floyd_run -m ... train.py`` shows the job monitor
  widget, whose state and log update in the page until the job succeeded.

Screenshots are saved in test-output/browser/ on failure (the Lab page before the workspace stops).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator

import docker
import pytest
import requests
from playwright.sync_api import expect

from tests.support.browser import OUTPUT, dismiss_news, save_docs_shot, stop_workspace
from tests.support.docker import docker_client, workspace_image  # noqa: F401
from tests.support.platform import Platform
from tests.support.workspaces import spawn

pytestmark = pytest.mark.browser

PROJECT = "lab-jobs"

NOTEBOOK_CELLS = [
    "import time\nfor i in range(3):\n    print(f'training step {i}', flush=True)\n    time.sleep(1)",
    "with open('/floyd/output/result.txt', 'w') as f:\n    f.write('accuracy=0.97\\n')\nprint('wrote result.txt')",
]
TRAIN_PY = """import time
for i in range(3):
    print(f"magic step {i}", flush=True)
    time.sleep(1)
print("magic done", flush=True)
"""


def notebook(cells: list[str]) -> dict:
    return {
        "cells": [{"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
                  for src in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def put_contents(platform: Platform, path: str, model: dict) -> None:
    r = requests.put(platform.url + f"user/admin/api/contents/{path}", headers=platform.admin.headers,
                     json=model, timeout=30)
    assert r.status_code in (200, 201), r.text


@pytest.fixture(scope="module")
def lab_workspace(platform: Platform, workspace_image: str,  # noqa: F811
                  docker_client: docker.DockerClient) -> Iterator[Platform]:  # noqa: F811
    """admin's workspace on project lab-jobs with code/train.ipynb, code/train.py, code/magic.ipynb."""
    admin = platform.admin
    r = admin.api("POST", "projects", json={"name": PROJECT})
    assert r.status_code in (201, 409), r.text
    t0 = time.monotonic()
    spawn(platform, admin, {"environment": "cpu", "project": PROJECT}, timeout=150)
    print(f"workspace ready in {time.monotonic() - t0:.1f}s")
    try:
        put_contents(platform, "code/train.ipynb",
                     {"type": "notebook", "format": "json", "content": notebook(NOTEBOOK_CELLS)})
        put_contents(platform, "code/train.py", {"type": "file", "format": "text", "content": TRAIN_PY})
        put_contents(platform, "code/magic.ipynb", {"type": "notebook", "format": "json", "content": notebook(
            ["%load_ext floyd", "%floyd_run -m 'from a magic' train.py"])})
        yield platform
    finally:
        stop_workspace(platform, docker_client)


def open_lab(page, platform: Platform, path: str) -> None:
    # like tests.browser.test_pages.login, but with a running server the hub sends us to /user/admin/
    page.goto(platform.url + "hub/login")
    page.fill("#username_input", "admin")
    page.fill("#password_input", (platform.root / "admin-password").read_text().strip())
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url, timeout=30_000)
    page.goto(platform.url + f"user/admin/lab/tree/{path}")
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    page.wait_for_function("() => document.querySelector('.jp-NotebookPanel .jp-Notebook-cell') !== null",
                           timeout=60_000)
    dismiss_news(page, timeout=3_000)


def save_failure_shot(page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(Exception):
        page.screenshot(path=str(OUTPUT / f"{name}-lab.png"), full_page=True)


def test_run_as_job_button_jobs_panel_and_output(page, lab_workspace: Platform) -> None:
    platform = lab_workspace
    try:
        open_lab(page, platform, "code/train.ipynb")
        button = page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="floyd-run-as-job"]')
        expect(button).to_be_visible(timeout=30_000)
        expect(button).to_contain_text("Run as job")
        button.locator("button, jp-button").first.click()

        dialog = page.locator(".floyd-RunJob-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator(".floyd-RunJob-path")).to_contain_text("train.ipynb")
        expect(dialog.locator('select[name="environment"]')).to_have_value("cpu", timeout=15_000)
        dialog.locator('input[name="message"]').fill("from the browser")
        run = dialog.locator("button.jp-mod-accept")
        expect(run).to_be_enabled()
        run.click()
        expect(dialog).to_have_count(0, timeout=30_000)

        # The Jobs panel opens on the new job and follows it.
        panel = page.locator("#floyd-jobs-panel")
        expect(panel).to_be_visible(timeout=10_000)
        selected = panel.locator(".floyd-JobsPanel-item.floyd-mod-selected")
        expect(selected).to_have_count(1, timeout=15_000)
        number = int(selected.locator(".floyd-JobsPanel-number").inner_text().lstrip("#"))
        state = panel.locator(".floyd-JobDetail-title .floyd-JobState")
        seen: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                s = state.inner_text(timeout=1_000).strip()
                if s and (not seen or seen[-1] != s):
                    seen.append(s)
                if s in ("succeeded", "failed", "stopped", "timed_out", "lost"):
                    break
            time.sleep(0.2)
        print(f"job #{number} states in the panel: {' -> '.join(seen)}")
        assert seen and seen[-1] == "succeeded", f"states seen: {seen}"
        order = ["queued", "starting", "running", "succeeded"]
        assert [s for s in seen if s in order] == sorted((s for s in seen if s in order), key=order.index), seen
        assert len(seen) > 1, f"the panel never showed the job before it ended: {seen}"
        expect(selected).to_contain_text("succeeded")
        expect(selected).to_contain_text("from the browser")
        expect(panel.locator("button.floyd-JobDetail-stop")).to_be_disabled()  # nothing left to stop
        log = panel.locator(".floyd-JobDetail-log")
        # the live log over server-sent events (floyd/api/jobs/<n>/logs?follow=1)
        expect(log).to_contain_text("training step 2", timeout=30_000)
        expect(log).to_contain_text("wrote result.txt")

        # "Open output": the file browser goes to jobs/<n>/output, where result.txt is.
        panel.locator("button.floyd-JobDetail-open").click()
        listing = page.locator(".jp-FileBrowser .jp-DirListing-content")
        expect(page.locator(".jp-FileBrowser .jp-BreadCrumbs")).to_contain_text("output", timeout=30_000)
        result = listing.locator(".jp-DirListing-item", has_text="result.txt")
        expect(result).to_be_visible(timeout=30_000)
        r = requests.get(platform.url + f"user/admin/api/contents/jobs/{number}/output/result.txt",
                         headers=platform.admin.headers, timeout=30)
        assert r.ok and r.json()["content"] == "accuracy=0.97\n", r.text
        # a notebook job: the executed copy is there and opens in a tab of its own, with its outputs
        expect(listing.locator(".jp-DirListing-item", has_text="train.ipynb")).to_have_count(1, timeout=30_000)
        executed = page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab[title*="jobs/{number}/output/train.ipynb"]')
        expect(executed).to_have_count(1, timeout=30_000)
        expect(page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").first).to_contain_text(
            "training step 0", timeout=30_000)

        # The panel again, for the picture: job list, state, log.
        page.locator('.jp-SideBar.jp-mod-left li[data-id="floyd-jobs-panel"]').click()
        expect(panel).to_be_visible(timeout=10_000)
        panel.locator(f'.floyd-JobsPanel-item[data-job="{number}"]').click()
        expect(log).to_contain_text("wrote result.txt", timeout=30_000)
        page.keyboard.press("Escape")
        save_docs_shot(page, "run-as-job.png")
    except BaseException:
        save_failure_shot(page, "test_run_as_job_button_jobs_panel_and_output")
        raise


def test_floyd_run_magic_widget_updates_in_the_page(page, lab_workspace: Platform) -> None:
    platform = lab_workspace
    try:
        open_lab(page, platform, "code/magic.ipynb")
        nb = page.locator(".jp-NotebookPanel:visible").first
        # (Lab may restore the first test's notebook too: look at the visible one only)
        expect(nb.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_visible(timeout=90_000)
        nb.locator(".jp-Notebook-cell .cm-content").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Shift+Enter")  # %load_ext floyd
        page.keyboard.press("Shift+Enter")  # %floyd_run ... train.py

        out = nb.locator(".jp-Notebook-cell").nth(1).locator(".jp-OutputArea-output")
        widget = out.locator(".widget-vbox").first
        expect(widget).to_be_visible(timeout=60_000)
        header = widget.locator(".widget-html").first
        log = widget.locator("textarea").first
        states: list[str] = []
        lines_seen: list[int] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = header.inner_text()
            m = re.search(r"\b(queued|starting|running|succeeded|failed|stopped|timed_out|lost)\b", text)
            if m and (not states or states[-1] != m.group(1)):
                states.append(m.group(1))
            n = len([ln for ln in log.input_value().splitlines() if ln.strip()])
            if not lines_seen or lines_seen[-1] != n:
                lines_seen.append(n)
            if m and m.group(1) in ("succeeded", "failed", "stopped", "timed_out", "lost") \
                    and "magic done" in log.input_value():
                break
            time.sleep(0.2)
        print(f"widget states: {' -> '.join(states)}; log line counts: {lines_seen}")
        assert states and states[-1] == "succeeded", f"states: {states}\n{header.inner_text()}"
        assert len(states) > 1, f"the widget only ever showed {states}"
        value = log.input_value()
        for i in range(3):
            assert f"magic step {i}" in value, value
        assert "magic done" in value, value
        assert len(lines_seen) > 2, f"the log did not grow in steps: {lines_seen}"
        # the job is the project's, with the magic's message
        jobs = platform.admin.api("GET", "jobs", params={"project": f"admin/{PROJECT}"}).json()
        items = jobs["items"]
        assert any(j.get("message") == "from a magic" and j.get("state") == "succeeded" for j in items), \
            json.dumps(items)[:2000]
    except BaseException:
        save_failure_shot(page, "test_floyd_run_magic_widget_updates_in_the_page")
        raise
