"""Browser smoke test of the built extension against floyd_api_stub (headless Chromium).

Needs the extension installed in the venv's share/jupyter/labextensions and Debian `chromium`.
Usage: python smoke.py OUTDIR   (exits non-zero on failure; screenshots in OUTDIR)
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

HERE = Path(__file__).resolve().parent
NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "lr = 0.01\nepochs = 3",
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "print(lr)", "outputs": [], "execution_count": None},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="floyd-lab-"))
    (root / "train.ipynb").write_text(json.dumps(NOTEBOOK))
    (root / "train.py").write_text("print('hi')\n")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(HERE), JUPYTER_CONFIG_DIR=str(root / ".cfg"),
               JUPYTER_RUNTIME_DIR=str(root / ".runtime"))
    log = open(outdir / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", "--IdentityProvider.token=smoke",
         "--ServerApp.jpserver_extensions={'floyd_api_stub': True}",
         "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token=smoke", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited: see {outdir / 'lab.log'}") from None
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "floyd" in m.text.lower() else None)
            page.goto(f"{base}/lab?token=smoke")
            page.wait_for_function("window.jupyterapp && window.jupyterapp.started", timeout=60000)
            page.wait_for_timeout(1000)
            assert page.evaluate("window.jupyterapp.commands.hasCommand('floyd:run-as-job')")

            # Jobs panel lists the stub's job
            page.evaluate("window.jupyterapp.commands.execute('floyd:show-jobs').then(() => true)")
            expect(page.locator("#floyd-jobs-panel .floyd-JobsPanel-item")).to_have_count(1, timeout=10000)
            expect(page.locator("#floyd-jobs-panel .floyd-JobState-succeeded")).to_be_visible()

            # Toolbar button in a notebook, dialog prefilled from /defaults
            page.evaluate("window.jupyterapp.commands.execute('docmanager:open', {path: 'train.ipynb'}).then(() => true)")
            button = page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="floyd-run-as-job"]')
            expect(button).to_be_visible(timeout=30000)
            expect(button).to_contain_text("Run as job")
            button.locator("button, jp-button").first.click()
            dialog = page.locator(".floyd-RunJob-dialog")
            expect(dialog).to_be_visible()
            expect(dialog.locator('textarea[name="params"]')).to_have_value(
                "lr = 0.01\nepochs = 3\npath = train.ipynb", timeout=10000)
            expect(dialog.locator('select[name="environment"]')).to_have_value("pytorch")
            expect(dialog.locator('textarea[name="datasets"]')).to_have_value("alice/mnist:3:mnist")
            dialog.locator('input[name="gpus"]').fill("1")
            dialog.locator('input[name="max_runtime"]').fill("1h30m")
            dialog.locator('input[name="message"]').fill("first try")
            page.screenshot(path=str(outdir / "dialog.png"))

            # first submit fails: message inline, dialog stays
            dialog.locator("button.jp-mod-accept").click()
            expect(dialog.locator(".floyd-RunJob-error")).to_have_text("No GPU is free: 0 of 0 in use (stub)")
            expect(dialog).to_be_visible()
            page.screenshot(path=str(outdir / "dialog-error.png"))

            # a bad field is refused before any request
            dialog.locator('textarea[name="params"]').fill("lr = 0.02\nnot an assignment")
            dialog.locator("button.jp-mod-accept").click()
            expect(dialog.locator(".floyd-RunJob-error")).to_contain_text("not \"name = value\"")
            dialog.locator('textarea[name="params"]').fill("lr = 0.02\nepochs = 3")

            # second submit works: dialog closes, panel selects the new job with log and chart
            dialog.locator("button.jp-mod-accept").click()
            expect(dialog).to_have_count(0, timeout=10000)
            expect(page.locator("#floyd-jobs-panel .floyd-JobsPanel-item")).to_have_count(2, timeout=10000)
            expect(page.locator("#floyd-jobs-panel .floyd-JobsPanel-item.floyd-mod-selected")).to_contain_text("#2")
            expect(page.locator(".floyd-JobDetail-log")).to_contain_text("job 2 line 4", timeout=10000)
            expect(page.locator(".floyd-MetricsChart path[data-metric='loss']")).to_have_count(1, timeout=10000)
            page.screenshot(path=str(outdir / "panel.png"))

            # the request carried the form's values
            sent = json.loads(urllib.request.urlopen(f"{base}/floyd/api/jobs?token=smoke").read())
            assert sent["items"][0]["path"] == "train.ipynb", sent

            # Stop
            page.locator(".floyd-JobDetail-stop").click()
            expect(page.locator("#floyd-jobs-panel .floyd-JobsPanel-item.floyd-mod-selected .floyd-JobState-stopped")).to_be_visible(timeout=10000)

            # Open output → file browser goes to jobs/2/output (created here so the path exists)
            (root / "jobs" / "2" / "output").mkdir(parents=True)
            page.locator(".floyd-JobDetail-open").click()
            expect(page.locator(".jp-FileBrowser .jp-BreadCrumbs")).to_contain_text("output", timeout=10000)

            # file browser context menu on a .py file
            page.evaluate("window.jupyterapp.commands.execute('filebrowser:open-path', {path: 'train.py'}).then(() => true)")
            page.wait_for_timeout(500)
            item = page.locator('.jp-DirListing-item[data-file-type="python"]').first
            item.click()
            item.click(button="right")
            expect(page.locator(".lm-Menu-itemLabel", has_text="Run as job")).to_be_visible()
            page.screenshot(path=str(outdir / "context-menu.png"))
            page.keyboard.press("Escape")
            # and on a notebook
            nb = page.locator('.jp-DirListing-item[data-file-type="notebook"]').first
            nb.click()
            nb.click(button="right")
            expect(page.locator(".lm-Menu-itemLabel", has_text="Run as job")).to_be_visible()
            page.keyboard.press("Escape")
            assert not errors, errors
            browser.close()
        print("browser smoke: 1 passed, 0 failed")
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/floyd-lab-smoke"))
