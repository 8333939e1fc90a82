"""A person in a browser watches a pipeline run: the DAG drawn in SVG, each step's state going
live from waiting to succeeded (or skipped after a failure), each box linked to its job's page.
The finished page is saved as docs/img/pipeline-page.png when FLOYD_UPDATE_DOCS_IMAGES=1."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.browser import login, save_docs_shot
from tests.support.docker import workspace_image  # noqa: F401
from tests.support.jobs import client_for
from tests.support.platform import Platform, write_tree


def test_pipeline_page_draws_the_dag_live(page, platform: Platform, workspace_image: str,  # noqa: F811
                                          tmp_path: Path) -> None:
    from floyd.client.transfer import upload_code

    admin = platform.admin
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    admin.api("POST", "projects", json={"name": "browser-pipe"})
    code = write_tree(tmp_path / "code", {
        "slow.py": b"# browser pipeline test\nimport time; time.sleep(3); print('slow done', flush=True)\n",
        "bad.py": b"# browser pipeline test\nraise SystemExit(1)\n"})
    up = upload_code(client_for(admin), "admin", "browser-pipe", code)
    steps = {"first": {"command": "python slow.py"},
             "second": {"command": "python slow.py", "inputs": [{"from": "first"}], "params": {"n": "2"}},
             "broken": {"command": "python bad.py", "inputs": [{"from": "first"}]},
             "after": {"command": "python slow.py", "inputs": [{"from": "broken"}], "params": {"n": "3"}}}
    run = admin.api("POST", "pipelines", json={"project": "admin/browser-pipe", "snapshot": up.version["id"],
                                               "pipeline": "watched", "steps": steps, "no_reuse": True}).json()
    page.goto(platform.url + "services/floyd/pipelines/" + run["id"])
    page.wait_for_selector("#dag .dag-step")
    assert "watched" in page.locator("h2").inner_text()
    # While the first step runs, the steps after it wait.
    page.wait_for_selector('#dag [data-step="first"][data-state="running"]', timeout=60_000)
    assert page.locator('#dag [data-step="second"]').get_attribute("data-state") == "waiting"
    assert page.locator("#dag path.dag-edge").count() == 3
    # Live to the end, without reloading the page.
    page.wait_for_selector('#dag [data-step="second"][data-state="succeeded"]', timeout=120_000)
    page.wait_for_selector('#dag [data-step="after"][data-state="skipped"]', timeout=30_000)
    page.wait_for_function("document.getElementById('state').textContent === 'failed'", timeout=30_000)
    assert page.locator('#dag [data-step="broken"]').get_attribute("data-state") == "failed"
    assert "upstream failed (broken)" in page.locator("#steps").inner_text()
    page.set_viewport_size({"width": 1100, "height": 620})
    save_docs_shot(page, "pipeline-page.png")
    record = admin.api("GET", f"pipelines/{run['id']}").json()
    second = next(st for st in record["steps"] if st["name"] == "second")
    link = page.locator('#dag a[data-step="second"]')
    assert link.get_attribute("href").endswith("/services/floyd/jobs/" + second["job"])
    link.click()
    page.wait_for_url("**/jobs/" + second["job"])
    time.sleep(0.1)
    assert second["job"] in page.locator("h2").inner_text()
