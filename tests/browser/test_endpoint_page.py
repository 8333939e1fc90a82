"""A person in a browser looks at a served endpoint: versions, request counts, the traffic chart,
the live log and the API keys.

The admin deploys a tiny Flask app, creates a key and calls the endpoint (some calls 404), then
opens its page: v1 is ready with its replica, the counts are there (and follow new requests
without a reload), the charts have drawn lines, the log shows the rollout, the key is listed
without its secret. The endpoints table lists it. The page is saved as docs/img/endpoint-page.png when FLOYD_UPDATE_DOCS_IMAGES=1.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.browser import login, save_docs_shot
from tests.support.docker import workspace_image  # noqa: F401
from tests.support.platform import Platform
from tests.support.serving import call, deploy, deploy_ready, wait_version

APP = b"""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return {"hello": "world"}


@app.post("/echo")
def echo():
    from flask import request
    return {"you sent": request.get_json(silent=True)}
"""


def cell(page, version: int, column: str) -> str:
    return page.locator(f'#stats tr[data-version="{version}"] td.{column}').inner_text()


def test_endpoint_page_versions_stats_chart_log_keys(page, platform: Platform, workspace_image: str,  # noqa: F811
                                                      tmp_path: Path) -> None:
    admin = platform.admin
    name = "browser-web"
    v1 = deploy_ready(admin, name, {"app.py": APP}, tmp_path, message="first cut")
    assert v1["number"] == 1
    r = admin.api("POST", f"endpoints/admin/{name}/keys", json={"name": "ci"})
    assert r.status_code == 201, r.text
    key = r.json()
    for _ in range(4):
        assert call(admin, name, "/").status_code == 200
    for _ in range(2):
        assert call(admin, name, "/nope").status_code == 404
    assert call(admin, name, "/echo", method="POST", key=key["key"], json={"x": 1}).json() == {"you sent": {"x": 1}}

    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(platform.url + f"services/floyd/serving/admin/{name}")  # HubOAuth: authorize and back
    page.wait_for_selector("#versions")
    assert f"admin/{name}" in page.locator("h2").inner_text()
    assert page.locator("#serving").inner_text() == "serving v1"

    # The versions table: v1 is ready with its one replica.
    row = page.locator('#versions tr[data-version="1"]')
    assert row.locator(".badge").inner_text() == "ready"
    assert "1/1 ready" in row.locator("td.replicas").inner_text()
    assert "0 restarts" in row.locator("td.replicas").inner_text()
    text = row.inner_text()
    assert "app.py" in text and "first cut" in text and "by admin" in text, text

    # The URL, a curl line with the key header, and the pinned URL of v1.
    url = page.locator("#url").inner_text()
    assert url.endswith(f"/services/floyd/endpoints/admin/{name}/"), url
    assert f'curl -H "Authorization: Bearer $FLOYD_KEY" {url}' in page.locator("#curl").inner_text()
    assert url + "v1/" in page.locator("#pinned").inner_text()

    # Request counts: 7 calls, 2 of them 404.
    page.wait_for_function("document.querySelector('#stats tr[data-version=\"1\"] td.requests')"
                           ".textContent === '7'")
    assert cell(page, 1, "c2xx") == "5" and cell(page, 1, "c4xx") == "2" and cell(page, 1, "c5xx") == "0"
    assert cell(page, 1, "p50").endswith(" ms") and cell(page, 1, "p99").endswith(" ms")

    # The charts, drawn by endpoint.js from the metrics API: lines for requests and latency.
    page.locator('#traffic svg[data-series="requests"] polyline[data-series="requests v1"]').wait_for()
    # (one bucket with requests: a one-point line and its dot)
    page.locator('#traffic svg[data-series="latency"] polyline[data-series="p99 v1"]').wait_for(state="attached")

    # New requests show up without a reload (the page refreshes every few seconds), chart included.
    for _ in range(3):
        assert call(admin, name, "/").status_code == 200
    page.wait_for_function("document.querySelector('#stats tr[data-version=\"1\"] td.requests')"
                           ".textContent === '10'", timeout=30_000)
    # At least the last minute, zero-filled per 10 s: a line that rises to the requests.
    ys = page.evaluate("""() => Array.from(document.querySelector(
        '#traffic svg[data-series="requests"] polyline[data-series="requests v1"]').points).map((p) => p.y)""")
    assert len(ys) >= 6 and min(ys) < max(ys), ys

    # The live log of the serving version: the rollout's lines.
    page.wait_for_function("document.getElementById('log').textContent.includes('[floyd] v1 is ready')",
                           timeout=30_000)
    assert "[floyd] r0: ready" in page.locator("#log").inner_text()

    # The key: name, prefix and state; never the secret.
    keys = page.locator("#keys").inner_text()
    assert "ci" in keys and key["prefix"] in keys and "active" in keys, keys
    assert key["key"] not in page.content()
    assert f"floyd endpoint keys create {name}" in page.locator("body").inner_text()

    # A broken v2: the open page says so; after a reload its row shows why, with the log's tail.
    deploy(admin, name, {"app.py": b"raise RuntimeError('the model file is missing')\n"}, tmp_path,
           project=f"{name}-code", message="broken on purpose")
    assert wait_version(admin, name, 2)["state"] == "failed"
    page.wait_for_function("!document.getElementById('notice').hidden && "
                           "document.getElementById('notice').textContent.includes('v2 (failed)')", timeout=30_000)
    page.locator("#notice a", has_text="Reload").click()
    row2 = page.locator('#versions tr[data-version="2"]')
    row2.wait_for()
    assert row2.locator(".badge").inner_text() == "failed"
    summary = row2.locator("details.reason summary")
    assert "exited with code" in summary.inner_text(), summary.inner_text()
    summary.click()
    assert "the model file is missing" in row2.locator("details.reason pre").inner_text()
    summary.click()
    assert page.locator("#serving").inner_text() == "serving v1"
    page.wait_for_function("document.getElementById('log').textContent.includes('[floyd] v1 is ready')")
    page.locator('#traffic svg[data-series="requests"] polyline[data-series="requests v1"]').wait_for()

    save_docs_shot(page, "endpoint-page.png", full_page=True)

    # The endpoints table lists it with its serving version and counts, and links to the page.
    page.click("header nav a:has-text('Endpoints')")
    page.wait_for_selector("#endpoints")
    listed = page.locator(f'#endpoints tr[data-endpoint="admin/{name}"]')
    text = listed.inner_text()
    assert "v1" in text and "ready" in text and "v2 failed" in text and "10" in text and url in text, text
    listed.locator("a", has_text=f"admin/{name}").click()
    page.wait_for_url(f"**/serving/admin/{name}")
    page.wait_for_selector("#versions")
