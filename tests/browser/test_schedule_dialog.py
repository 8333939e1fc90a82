"""The "Run as job" dialog's "On a schedule" choice, in a real workspace: the notebook is stored
as a schedule of the workspace's project (cron and time zone as given; the code as it is now),
confirmed in the dialog with its next run; a bad cron keeps the dialog open with the bridge's
message and stores nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_run_as_job import PROJECT, lab_workspace, open_lab, save_failure_shot  # noqa: F401
from tests.support.platform import Platform

pytestmark = pytest.mark.browser


def test_run_as_job_on_a_schedule(page, lab_workspace: Platform) -> None:  # noqa: F811
    platform = lab_workspace
    admin = platform.admin
    try:
        open_lab(page, platform, "code/train.ipynb")
        button = page.locator('.jp-NotebookPanel-toolbar [data-jp-item-name="floyd-run-as-job"]')
        expect(button).to_be_visible(timeout=30_000)
        button.locator("button, jp-button").first.click()
        dialog = page.locator(".floyd-RunJob-dialog")
        expect(dialog.locator('select[name="environment"]')).to_have_value("cpu", timeout=15_000)
        expect(dialog.locator('input[name="cron"]')).to_be_hidden()
        dialog.locator('select[name="when"]').select_option("schedule")
        dialog.locator('input[name="schedule_name"]').fill("nightly-lab")
        dialog.locator('input[name="cron"]').fill("61 3 * * *")
        dialog.locator('input[name="timezone"]').fill("Europe/Berlin")
        dialog.locator("button.jp-mod-accept").click()
        expect(dialog.locator(".floyd-RunJob-error")).to_contain_text("Invalid cron", timeout=30_000)
        # the admin sees every user's schedules; the walk of other tests may have left some
        assert [s for s in admin.api("GET", "schedules").json()["items"] if s["owner"] == "admin"] == []

        dialog.locator('input[name="cron"]').fill("0 3 * * *")
        dialog.locator("button.jp-mod-accept").click()
        done = dialog.locator(".floyd-RunJob-scheduled")
        expect(done).to_contain_text("Scheduled admin/nightly-lab (0 3 * * *, Europe/Berlin)", timeout=30_000)
        sched = admin.api("GET", "schedules/admin/nightly-lab").json()
        request = sched["target"]["request"]
        assert sched["timezone"] == "Europe/Berlin" and sched["next_run_at"]
        assert request["project"] == f"admin/{PROJECT}" and request["notebook"] == "train.ipynb"
        assert request["snapshot"].startswith("sha256:")
        dialog.locator("button.jp-mod-reject").click()
        expect(dialog).to_have_count(0)
    except BaseException:
        save_failure_shot(page, "test_run_as_job_on_a_schedule")
        raise
    finally:
        admin.api("DELETE", "schedules/admin/nightly-lab")


def test_tensorboard_in_the_workspace_is_one_click(lab_workspace: Platform) -> None:  # noqa: F811
    """jupyter-server-proxy's launcher entry: TensorBoard over /floyd/jobs (this project's outputs)."""
    import requests

    base = lab_workspace.url + "user/admin/"
    headers = lab_workspace.admin.headers
    r = requests.get(base + "server-proxy/servers-info", headers=headers, timeout=30)
    assert r.ok, r.text
    assert any(s["name"] == "tensorboard" and s.get("launcher_entry", {}).get("enabled", True)
               for s in r.json()["server_processes"]), r.text
    r = requests.get(base + "tensorboard/", headers=headers, timeout=90)
    assert r.status_code == 200 and "TensorBoard" in r.text, r.text[:300]
