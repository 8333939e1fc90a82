"""A person in a browser watches a job: the live log, the state badge, the metric chart, the outputs.

The admin submits a job through the API and opens its page at once; the first log line must
appear while the job still runs (the page follows the log with EventSource), then the badge turns
to succeeded, the chart has a line for "loss" and the output file has a download link. The jobs
table lists the job. The finished page is saved as docs/img/job-page.png when FLOYD_UPDATE_DOCS_IMAGES=1.
"""

from __future__ import annotations

from pathlib import Path

import requests

from tests.support.browser import OUTPUT, login, save_docs_shot
from tests.support.docker import workspace_image  # noqa: F401
from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform

TRAIN = b"""
import json, time
print("epoch 0: warming up", flush=True)
time.sleep(3)
print(json.dumps({"metric": "loss", "value": 0.5, "step": 1}), flush=True)
for step in range(2, 6):
    print(f"epoch {step}: training", flush=True)
    print(json.dumps({"metric": "loss", "value": 0.5 / step, "step": step}), flush=True)
    time.sleep(0.2)
with open("/floyd/output/out.txt", "w") as f:
    f.write("model weights\\n")
print("done", flush=True)
"""


def test_job_page_live_log_chart_and_outputs(page, platform: Platform, workspace_image: str,  # noqa: F811
                                             tmp_path: Path) -> None:
    admin = platform.admin
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    job = submit(admin, "browser-train", {"train.py": TRAIN}, tmp_path, command="python train.py",
                 message="watched from a browser")["job"]
    url = platform.url + "services/floyd/jobs/" + job["id"]
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(url)  # HubOAuth: through the hub's authorize page and back
    page.wait_for_selector("#log")
    assert job["id"] in page.locator("h2").inner_text()

    # Live: the first line is there while the job is still running (it sleeps 3 s after it).
    page.wait_for_function("document.getElementById('log').textContent.includes('epoch 0: warming up')",
                           timeout=90_000)
    assert "done" not in page.locator("#log").inner_text()
    assert admin.api("GET", f"jobs/{job['id']}").json()["state"] in ("starting", "running")
    assert page.locator("#stop").is_visible()

    # The end: the badge, the full log, the chart and the output link.
    page.wait_for_function("document.getElementById('state').textContent === 'succeeded'", timeout=90_000)
    assert "state-succeeded" in (page.locator("#state").get_attribute("class") or "")
    page.wait_for_function("document.getElementById('log').textContent.includes('done')")
    page.locator("#stop").wait_for(state="hidden")
    page.wait_for_function("document.getElementById('exit-code').textContent === '0'")
    polyline = page.locator('#charts svg polyline[data-series="loss"]')
    polyline.wait_for()
    points = (polyline.get_attribute("points") or "").split()
    assert len(points) == 5, points  # steps 1..5
    link = page.locator("#outputs a", has_text="out.txt")
    link.wait_for()
    href = link.get_attribute("href") or ""
    assert href.endswith("/output/download?path=out.txt"), href
    assert wait_state(admin, job["id"], {"succeeded"})["exit_code"] == 0
    # The download link works with the page's own cookie.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    r = requests.get(platform.url.rstrip("/") + href if href.startswith("/") else href, cookies=cookies, timeout=10)
    assert r.status_code == 200 and r.content == b"model weights\n"
    assert "watched from a browser" in page.locator("p.message").inner_text()
    save_docs_shot(page, "job-page.png")

    # The jobs table lists it, with its state and latest metric.
    page.goto(platform.url + "services/floyd/jobs")
    row = page.locator("#jobs tr", has_text=job["id"])
    row.wait_for()
    text = row.inner_text()
    assert "succeeded" in text and "admin/browser-train" in text and "loss=0.1" in text, text
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "jobs-list.png"))
    row.locator("a", has_text=job["id"]).click()
    page.wait_for_url("**/jobs/" + job["id"])
    page.wait_for_selector("#log")


def test_stop_button_and_live_table(page, platform: Platform, workspace_image: str,  # noqa: F811
                                    tmp_path: Path) -> None:
    """The Stop button POSTs with the page's XSRF token; the badge turns to stopped, and so does the
    job's row in an open jobs table, without a reload."""
    admin = platform.admin
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    job = submit(admin, "browser-stop", {"wait.py": b"import time\nprint('waiting', flush=True)\ntime.sleep(300)\n"},
                 tmp_path, command="python wait.py")["job"]
    table = page.context.new_page()
    table.goto(platform.url + "services/floyd/jobs")
    badge = table.locator("#jobs tr", has_text=job["id"]).locator(".badge")
    badge.wait_for()
    table.wait_for_function("document.getElementById('refreshed').textContent.startsWith('Updated')")

    page.goto(platform.url + "services/floyd/jobs/" + job["id"])
    page.wait_for_function("document.getElementById('log').textContent.includes('waiting')", timeout=90_000)
    table.wait_for_function(f"document.querySelector('#jobs tr[data-job=\"{job['id']}\"] .badge')"
                            ".textContent === 'running'")
    page.click("#stop")
    page.wait_for_function("document.getElementById('state').textContent === 'stopped'", timeout=60_000)
    assert wait_state(admin, job["id"], {"stopped"}, timeout=30)["reason"] == "stopped by request"
    page.wait_for_function("document.getElementById('reason').textContent === 'stopped by request'")
    page.locator("#stop").wait_for(state="hidden")
    table.wait_for_function(f"document.querySelector('#jobs tr[data-job=\"{job['id']}\"] .badge')"
                            ".textContent === 'stopped'")
    assert "state-stopped" in (badge.get_attribute("class") or "")
