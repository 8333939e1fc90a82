"""Walk every route as the owner, another user, an admin and nobody.

Another user's private things are 404 (their existence is not revealed) on every route;
no token is 401 on every API route but the public ones; nothing changes for the owner.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform, User
from tests.support.routes import route_methods
from tests.support.serving import deploy_ready

PUBLIC_API = {"/api/v1/info", "/api/v1/openapi.json"}
ADMIN_API = {"/api/v1/nodes", "/nodes"}  # the machines jobs run on: admins only (403 to everybody else)
PAGES = {"/", "/datasets/{owner}/{name}", "/jobs", "/jobs/{owner}/{project}/{number}", "/serving", "/serving/{owner}/{name}",
         "/nodes"}


@pytest.fixture(scope="module")
def world(platform: Platform, workspace_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    owner = platform.user("walk-owner")
    owner.api("POST", "projects", json={"name": "secret-proj"})
    owner.api("POST", "datasets", json={"name": "secret-data"})
    data = b"secret bytes"
    manifest = [{"path": "s.txt", "size": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}]
    up = owner.api("POST", "datasets/walk-owner/secret-data/uploads", json={"manifest": manifest}).json()
    owner.api("PUT", f"uploads/{up['id']}/blobs/{manifest[0]['hash']}", data=data)
    assert owner.api("POST", f"uploads/{up['id']}/commit").status_code == 201
    # A second, open upload for the upload routes.
    data2 = b"more secret bytes"
    m2 = [{"path": "t.txt", "size": len(data2), "hash": "sha256:" + hashlib.sha256(data2).hexdigest()}]
    up2 = owner.api("POST", "datasets/walk-owner/secret-data/uploads", json={"manifest": m2}).json()
    # A finished job of the project, for the job routes.
    job = submit(owner, "secret-proj", {"run.py": b"print('secret output')"}, tmp_path_factory.mktemp("walk"),
                 command="python run.py")["job"]
    wait_state(owner, job["id"], {"succeeded"})
    # An endpoint with a running version and a key, for the endpoint routes and pages.
    deploy_ready(owner, "secret-ep", {"app.py": b"from flask import Flask\napp = Flask(__name__)\n"},
                 tmp_path_factory.mktemp("walk-ep"))
    key = owner.api("POST", "endpoints/walk-owner/secret-ep/keys", json={"name": "k"}).json()
    return {"owner": "walk-owner", "upload_id": up2["id"], "hash": m2[0]["hash"], "version": "1",
            "project": "secret-proj", "number": "1", "snapshot": job["snapshot"], "key_id": str(key["id"])}


def concrete(template: str, world: dict[str, str]) -> str:
    name = "secret-proj" if template.startswith(("/api/v1/projects", "/api/v1/jobs")) else \
        "secret-ep" if template.startswith(("/api/v1/endpoints", "/serving")) else "secret-data"
    values = {**world, "name": name}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def owner_scoped(template: str) -> bool:
    return "{owner}" in template or "{upload_id}" in template




def request(platform: Platform, method: str, path: str, user: User | None) -> requests.Response:
    base = platform.url + "services/floyd"
    headers = user.headers if user else {}
    kwargs = {"json": {}} if method in ("post", "put", "patch") else {}
    return requests.request(method.upper(), base + path, headers=headers, allow_redirects=False, timeout=30,
                            params={"from": "1", "to": "1"} if path.endswith("/diff") else None, **kwargs)


def routes() -> list[tuple[str, str]]:
    return [(t, m) for t, methods in sorted(route_methods().items()) for m in methods]


@pytest.mark.parametrize("template,method", routes())
def test_no_token(platform: Platform, world: dict[str, str], template: str, method: str) -> None:
    r = request(platform, method, concrete(template, world), None)
    if template in PUBLIC_API:
        assert r.status_code == 200
    elif template in PAGES:
        assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]
    else:
        assert r.status_code == 401, r.text
        if method != "head":
            assert "floyd login" in r.json()["message"]


@pytest.mark.parametrize("template,method", [(t, m) for t, m in routes() if owner_scoped(t)])
def test_other_user_gets_404(platform: Platform, world: dict[str, str], template: str, method: str) -> None:
    intruder = platform.user("walk-intruder")
    r = request(platform, method, concrete(template, world), intruder)
    assert r.status_code == 404, (template, method, r.status_code, r.text)
    if method != "head" and template not in PAGES:
        assert "walk-owner" not in r.json()["message"] or "not found" in r.json()["message"]


@pytest.mark.parametrize("template,method", [(t, m) for t, m in routes() if m in ("get", "head")])
def test_owner_and_admin_can_read(platform: Platform, world: dict[str, str], template: str, method: str) -> None:
    owner = platform.user("walk-owner")
    for who in (owner, platform.admin):
        r = request(platform, method, concrete(template, world), who)
        expected = 403 if template in ADMIN_API and who is owner else 200
        assert r.status_code == expected, (who.name, template, method, r.status_code, r.text[:300])


def test_nothing_changed_for_the_owner(platform: Platform, world: dict[str, str]) -> None:
    owner = platform.user("walk-owner")
    assert owner.api("GET", "projects/walk-owner/secret-proj").status_code == 200
    r = owner.api("GET", "datasets/walk-owner/secret-data/versions/1/download", params={"path": "s.txt"})
    assert r.content == b"secret bytes"
    assert owner.api("GET", f"uploads/{world['upload_id']}").status_code == 200


def test_intruder_lists_show_nothing(platform: Platform, world: dict[str, str]) -> None:
    intruder = platform.user("walk-intruder")
    assert "secret-data" not in str(intruder.api("GET", "datasets").json())
    assert "secret-data" not in str(intruder.api("GET", "datasets", params={"owner": "walk-owner"}).json())
    assert "secret-proj" not in str(intruder.api("GET", "projects", params={"owner": "walk-owner"}).json())
    admin_view = platform.admin.api("GET", "datasets", params={"owner": "walk-owner"}).json()["items"]
    assert [d["name"] for d in admin_view] == ["secret-data"]
