"""A person registers a model from a job's page, then finds it, its version and an alias on the
model's page: the "Register model" field, the link it answers with, the models list."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.browser import login
from tests.support.docker import workspace_image  # noqa: F401
from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform


def test_register_from_the_job_page(page, platform: Platform, workspace_image: str,  # noqa: F811
                                    tmp_path: Path) -> None:
    admin = platform.admin
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    weights = f"browser weights {uuid.uuid4().hex}"
    job = submit(admin, "browser-models", {"train.py": f"open('/floyd/output/w.txt', 'w').write({weights!r})".encode()},
                 tmp_path, command="python train.py", params={"depth": "3"})["job"]
    wait_state(admin, job["id"], {"succeeded"})
    page.goto(platform.url + "services/floyd/jobs/" + job["id"])
    page.fill("#model-name", "browser-iris")
    page.click("#register")
    link = page.locator("#registered")
    link.wait_for(timeout=30_000)
    assert "admin/browser-iris:1" in link.inner_text()
    model_url = link.get_attribute("href")
    assert model_url and model_url.endswith("/models/admin/browser-iris")

    # a bad name gets the bridge's message, and nothing is stored
    page.fill("#model-name", "bad..name")
    page.evaluate("document.getElementById('model-name').removeAttribute('pattern')")
    page.click("#register")
    page.wait_for_function("document.getElementById('register-result').textContent.includes('Invalid')")
    assert admin.api("GET", "models/admin/bad..name").status_code in (400, 404)

    assert admin.api("PUT", "models/admin/browser-iris/aliases/production", json={"version": 1}).ok
    page.goto(platform.url.rstrip("/") + model_url)
    page.wait_for_selector("#versions")
    assert "admin/browser-iris:1" in page.locator("#versions").inner_text()
    assert job["id"] in page.locator("#versions").inner_text() and "depth=3" in page.locator("#versions").inner_text()
    assert "production" in page.locator("#aliases").inner_text()
    assert "production" in page.locator("#alias-history").inner_text()
    page.goto(platform.url + "services/floyd/models")
    assert "admin/browser-iris" in page.locator("#models").inner_text()
