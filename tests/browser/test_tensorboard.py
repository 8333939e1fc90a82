"""TensorBoard over a job's output, run by the platform in the job's environment image and served
behind the Hub's login: a job writes scalars with tensorboardX; TensorBoard's scalars view shows
them in a real browser through the platform's URL; its data grows while the job runs; another
user gets 404 and nobody signed in goes to the login; bad requests are 4xx. The TensorBoard buttons of
the sweep, pipeline and job pages open one over their runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from floyd.client.transfer import upload_code
from tests.support.browser import OUTPUT, login
from tests.support.jobs import client_for, submit, wait_state
from tests.support.platform import Platform, write_tree

pytestmark = pytest.mark.browser

WRITER = b"""import time
from tensorboardX import SummaryWriter
w = SummaryWriter('/floyd/output/tb')
for step in range(40):
    w.add_scalar('tbtest/loss', 1.0 / (step + 1), step)
    w.flush()
    print('step', step, flush=True)
    time.sleep(0.5)
w.close()
"""


def scalars(platform: Platform, url: str, headers: dict) -> list:
    runs = requests.get(platform.url.rstrip("/") + url + "data/runs", headers=headers, timeout=30).json()
    if not runs:
        return []
    r = requests.get(platform.url.rstrip("/") + url + "data/plugin/scalars/scalars",
                     params={"run": runs[0], "tag": "tbtest/loss"}, headers=headers, timeout=30)
    return r.json() if r.ok else []


def test_tensorboard_shows_a_jobs_scalars(page, platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    admin = platform.admin
    job = submit(admin, "tb-proj", {"write.py": WRITER}, tmp_path, command="python write.py")["job"]
    wait_state(admin, job["id"], {"running"})
    deadline = time.monotonic() + 60
    while "step 2" not in admin.api("GET", f"jobs/{job['id']}/logs").text and time.monotonic() < deadline:
        time.sleep(0.3)
    r = admin.api("POST", "tensorboards", json={"jobs": [job["id"]]})
    assert r.status_code == 201, r.text
    board = r.json()
    assert board["jobs"] == [job["id"]] and board["url"].startswith("/services/floyd/tensorboards/admin/")
    again = admin.api("POST", "tensorboards", json={"jobs": [job["id"]]})
    assert again.status_code == 200 and again.json()["id"] == board["id"]  # the running one

    # It updates while the job runs: more points later than at first.
    first = scalars(platform, board["url"], admin.headers)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(scalars(platform, board["url"], admin.headers)) <= len(first):
        time.sleep(1)
    assert len(scalars(platform, board["url"], admin.headers)) > len(first)

    # Only its owner (or an admin): another user gets 404, nobody signed in goes to the login.
    other = platform.user("tb-intruder")
    assert requests.get(platform.url.rstrip("/") + board["url"], headers=other.headers, timeout=30).status_code == 404
    assert other.api("GET", f"tensorboards/admin/{board['id']}").status_code == 404
    anonymous = requests.get(platform.url.rstrip("/") + board["url"], allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/hub/api/oauth2/authorize" in anonymous.headers["Location"]
    intruding = other.api("POST", "tensorboards", json={"jobs": [job["id"]]})
    assert intruding.status_code == 404, intruding.text

    # The scalars view in a browser, through the platform's URL, signed in.
    try:
        login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
        page.goto(platform.url.rstrip("/") + board["url"] + "#scalars")
        expect(page.get_by_text("tbtest/loss").first).to_be_visible(timeout=90_000)
        expect(page.locator("body")).to_contain_text("tb-proj", timeout=30_000)  # the run's name
    except BaseException:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "test_tensorboard.png"), full_page=True)
        raise
    finally:
        admin.api("POST", f"jobs/{job['id']}/stop")
    assert admin.api("DELETE", f"tensorboards/admin/{board['id']}").status_code == 204
    assert admin.api("GET", f"tensorboards/admin/{board['id']}").status_code == 404


def test_tensorboard_bad_requests(platform: Platform) -> None:
    user = platform.user("tb-bad")
    for body, status in (({}, 400), ({"jobs": []}, 400), ({"jobs": "x"}, 400), ({"jobs": ["a" * 4096]}, 400),
                         ({"jobs": ["tb-bad/nope/1"]}, 404), ({"jobs": ["x/y/1"] * 21}, 400)):
        r = user.api("POST", "tensorboards", json=body)
        assert r.status_code == status, (body, r.text)
        assert len(r.text) < 2000
    assert user.api("GET", "tensorboards").json()["items"] == []
    r = user.cli("tensorboard", "nope/1", check=False)
    assert r.returncode == 4 and "Traceback" not in r.stderr


QUICK_WRITER = b"""# tensorboard buttons test: a few scalars, then done
import os
from tensorboardX import SummaryWriter
w = SummaryWriter('/floyd/output/tb')
for step in range(5):
    w.add_scalar('tbtest/loss', float(os.environ.get('FLOYD_PARAM_LR', '1')) / (step + 1), step)
w.close()
"""


def open_board(page, url: str) -> str:
    """Click the page's TensorBoard button; the new tab shows TensorBoard's scalars. Its URL."""
    page.goto(url)
    with page.expect_popup() as opened:
        page.click("#tensorboard")
    tab = opened.value
    tab.wait_for_url("**/tensorboards/**", timeout=90_000)
    expect(tab.get_by_text("tbtest/loss").first).to_be_visible(timeout=90_000)
    board_url = tab.url
    tab.close()
    return board_url


def test_tensorboard_buttons_on_the_sweep_pipeline_and_job_pages(page, platform: Platform, workspace_image: str,
                                                             tmp_path: Path) -> None:
    admin = platform.admin
    sweep = submit(admin, "tb-sweep", {"write.py": QUICK_WRITER}, tmp_path, command="python write.py",
                   sweep={"grid": {"lr": ["0.5", "0.25"]}})
    jobs = [j["id"] for j in sweep["jobs"]]
    admin.api("POST", "projects", json={"name": "tb-pipe"})
    code = write_tree(tmp_path / "pipe", {"write.py": QUICK_WRITER + b"# the pipeline's copy\n"})
    up = upload_code(client_for(admin), "admin", "tb-pipe", code)
    run = admin.api("POST", "pipelines", json={
        "project": "admin/tb-pipe", "snapshot": up.version["id"], "pipeline": "boards", "no_reuse": True,
        "steps": {"one": {"command": "python write.py"},
                  "two": {"command": "python write.py", "params": {"lr": "2"}, "inputs": [{"from": "one"}]}}}).json()
    for job in jobs:
        wait_state(admin, job, {"succeeded"})
    deadline = time.monotonic() + 120
    while (record := admin.api("GET", f"pipelines/{run['id']}").json())["state"] == "running":
        assert time.monotonic() < deadline, record
        time.sleep(0.5)
    assert record["state"] == "succeeded", record
    base = platform.url + "services/floyd/"
    try:
        login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
        sweep_board = open_board(page, f"{base}compare?group={sweep['group']['id']}")
        pipe_board = open_board(page, f"{base}pipelines/{run['id']}")
        job_board = open_board(page, f"{base}jobs/{jobs[0]}")  # the job page's button: the same handler
    except BaseException:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / "test_tensorboard_buttons.png"), full_page=True)
        raise
    boards = {b["url"]: b for b in admin.api("GET", "tensorboards").json()["items"]}
    by_url = {platform.url.rstrip("/") + url: b for url, b in boards.items()}
    assert sorted(by_url[sweep_board.split("#")[0]]["jobs"]) == sorted(jobs)
    assert sorted(by_url[pipe_board.split("#")[0]]["jobs"]) == sorted(st["job"] for st in record["steps"])
    assert by_url[job_board.split("#")[0]]["jobs"] == [jobs[0]]
    for b in boards.values():
        admin.api("DELETE", f"tensorboards/admin/{b['id']}")
