"""A person in a browser looks at an endpoint that scales: the page says how it scales (to zero
after an idle time), shows the cold start of the version that just woke, the traffic split, and
draws the replica count over time beside the requests and latency charts."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.browser import login
from tests.support.docker import workspace_image  # noqa: F401
from tests.support.platform import Platform
from tests.support.serving import ASGI_OK_APP, call, deploy_ready, ensure_endpoint


def test_scaling_page_shows_autoscaling_cold_start_split_and_replicas(
        page, platform: Platform, workspace_image: str, tmp_path: Path) -> None:  # noqa: F811
    admin = platform.admin
    name = "browser-scaled"
    ensure_endpoint(admin, name)
    r = admin.api("PATCH", f"endpoints/admin/{name}", json={"autoscaling": {
        "min_replicas": 0, "max_replicas": 2, "idle_timeout": 1, "scale_down_window": 0}})
    assert r.status_code == 200, r.text
    v = deploy_ready(admin, name, {"app.py": ASGI_OK_APP}, tmp_path)
    deadline = time.monotonic() + 60
    while admin.api("GET", f"endpoints/admin/{name}/versions/{v['number']}").json()["replicas"]["desired"]:
        assert time.monotonic() < deadline, "no scale to zero"
        time.sleep(0.3)
    assert call(admin, name, "/").text == "ok"  # wakes it
    admin.api("PUT", f"endpoints/admin/{name}/traffic", json={"split": {str(v["number"]): 100}})

    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    page.goto(platform.url + f"services/floyd/serving/admin/{name}")
    page.wait_for_selector("#versions")
    assert "0–2 replicas" in page.locator("#autoscaling").inner_text()
    assert "to zero after" in page.locator("#autoscaling").inner_text()
    assert f"v{v['number']} 100%" in page.locator("#split").inner_text()
    replicas = page.locator(f'#versions tr[data-version="{v["number"]}"] td.replicas').inner_text()
    assert "cold start" in replicas and "1/1 ready" in replicas, replicas
    page.locator(f'#traffic svg[data-series="replicas"] polyline[data-series="replicas v{v["number"]}"]').wait_for(
        state="attached")
