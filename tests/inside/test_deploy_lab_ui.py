"""The "Deploy as endpoint" dialog in a real JupyterLab page (headless chromium), served by the
test's ``jupyter server`` with the built extension, against the real platform: the file browser's
context menu opens the dialog on app.py, Deploy uploads and deploys, and the status in the dialog
goes from deploying to ready with the endpoint's URL and a curl line; the endpoint answers."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.support.browser import OUTPUT
from tests.support.lab import APP

pytestmark = pytest.mark.browser


def test_deploy_dialog_from_the_file_browser(jupyter_server, workspace_image: str, page) -> None:
    server, ws = jupyter_server
    (ws.code / "app.py").write_bytes(APP)
    page.goto(f"{server.url}lab/tree/code?token={server.token}")
    item = page.locator('.jp-DirListing-item[data-file-type="python"]', has_text="app.py")
    expect(item).to_be_visible(timeout=120_000)
    item.click()
    item.click(button="right")
    page.locator('.lm-Menu-item[data-command="floyd:deploy-file-as-endpoint"]').click()

    dialog = page.locator(".floyd-Deploy-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator('input[name="name"]')).to_have_value("app")
    expect(dialog.locator('select[name="environment"]')).to_have_value("cpu", timeout=15_000)
    dialog.locator('input[name="name"]').fill("Bad Name")
    dialog.locator("button.jp-mod-accept").click()
    expect(dialog.locator(".floyd-RunJob-error")).to_contain_text("not an endpoint name")
    dialog.locator('input[name="name"]').fill("lab-ui")
    dialog.locator('input[name="message"]').fill("from the dialog")
    dialog.locator("button.jp-mod-accept").click()

    status = dialog.locator(".floyd-Deploy-status")
    expect(status.locator(".floyd-Deploy-statusTitle")).to_contain_text(f"{ws.user.name}/lab-ui v1",
                                                                         timeout=60_000)
    expect(status).to_have_class("floyd-Deploy-status floyd-Deploy-ready", timeout=180_000)
    url = f"{ws.user.platform.url}services/floyd/endpoints/{ws.user.name}/lab-ui/"
    expect(status.locator(".floyd-Deploy-code").first).to_have_text(url)
    expect(status).to_contain_text('curl -H "Authorization: Bearer $FLOYD_API_KEY"')
    expect(status).to_contain_text("floyd endpoint keys create lab-ui")
    r = requests.get(url + "hello", params={"who": "ui"}, headers=ws.user.headers, timeout=60)
    assert r.status_code == 200 and r.json()["hello"] == "ui", r.text
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "deploy-as-endpoint-ready.png"))
    dialog.locator("button.jp-mod-reject").click()
    expect(dialog).to_have_count(0)
