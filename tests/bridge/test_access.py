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
WORLD_RUN: dict[str, str] = {}
PAGES = {"/", "/datasets/{owner}/{name}", "/datasets/{owner}/{name}/preview",
         "/datasets/{owner}/{name}/diff", "/jobs", "/jobs/{owner}/{project}/{number}", "/serving", "/serving/{owner}/{name}",
         "/lineage", "/compare", "/models", "/models/{owner}/{name}",
         "/pipelines/{owner}/{project}/{number}", "/nodes"}
# Routes that name what they read in the query, not the path: the owner's job stands in for it.
QUERIES = {"/api/v1/lineage": {"ref": "walk-owner/secret-proj/1"}, "/lineage": {"ref": "walk-owner/secret-proj/1"},
           "/api/v1/compare": {"jobs": "walk-owner/secret-proj/1"}, "/compare": {"jobs": "walk-owner/secret-proj/1"}}


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
    job = submit(owner, "secret-proj", {"run.py": b"import os\nprint('secret output')\n"
                                                  b"open(os.environ['FLOYD_OUTPUT'] + '/w.txt', 'w').write('walk weights')\n"}, tmp_path_factory.mktemp("walk"),
                 command="python run.py")["job"]
    wait_state(owner, job["id"], {"succeeded"})
    # A pipeline run of the project (run 1), for the pipeline routes and page.
    run = owner.api("POST", "pipelines", json={"project": "walk-owner/secret-proj", "snapshot": job["snapshot"],
                                               "pipeline": "walk", "steps": {"only": {"command": "python run.py"}}})
    assert run.status_code == 201 and run.json()["number"] == 1, run.text
    # An endpoint with a running version and a key, for the endpoint routes and pages.
    deploy_ready(owner, "secret-ep", {"app.py": b"from flask import Flask\napp = Flask(__name__)\n"},
                 tmp_path_factory.mktemp("walk-ep"))
    key = owner.api("POST", "endpoints/walk-owner/secret-ep/keys", json={"name": "k"}).json()
    # A schedule of the project's job (paused: the walk starts no jobs), for the schedule routes.
    sched = owner.api("POST", "schedules", json={
        "name": "secret-sched", "cron": "0 3 * * *", "paused": True,
        "target": {"kind": "job", "request": {"project": "walk-owner/secret-proj", "snapshot": job["snapshot"],
                                              "command": "python run.py"}}})
    assert sched.status_code == 201, sched.text
    # A running TensorBoard over the job's output, for the TensorBoard routes.
    board = owner.api("POST", "tensorboards", json={"jobs": [job["id"]]})
    assert board.status_code == 201, board.text
    # A model registered from the job's output, with an alias, for the model routes and pages.
    r = owner.api("POST", "models/walk-owner/secret-model/versions", json={"from": job["id"]})
    assert r.status_code == 201, r.text
    assert owner.api("PUT", "models/walk-owner/secret-model/aliases/production", json={"version": 1}).ok
    WORLD_RUN["run_id"] = job["mlflow_run_id"]  # the MLflow routes name the job's run in their query or body
    return {"owner": "walk-owner", "upload_id": up2["id"], "hash": m2[0]["hash"], "version": "1",
            "project": "secret-proj", "number": "1", "snapshot": job["snapshot"], "key_id": str(key["id"]),
            "alias": "production", "tb_id": board.json()["id"],
            "run_id": job["mlflow_run_id"], "artifact_path": "walk/a.txt", "route": "api/2.0/mlflow/experiments/search"}


def concrete(template: str, world: dict[str, str]) -> str:
    name = "secret-proj" if template.startswith(("/api/v1/projects", "/api/v1/jobs", "/api/v1/pipelines")) else \
        "secret-ep" if template.startswith(("/api/v1/endpoints", "/serving")) else \
        "secret-model" if template.startswith(("/api/v1/models", "/models")) else \
        "secret-sched" if template.startswith("/api/v1/schedules") else "secret-data"
    values = {**world, "name": name}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


MLFLOW = "/api/v1/mlflow/"
MLFLOW_UNSCOPED = {MLFLOW + "api/2.0/mlflow/runs/create", MLFLOW + "{route}"}  # no run named: not a 404
NOT_IMPLEMENTED = {MLFLOW + "{route}"}  # answers 501 to everybody who signed in


def owner_scoped(template: str) -> bool:
    if template.startswith(MLFLOW):  # a run is the owner's job
        return ("/runs/" in template or "{run_id}" in template) and template not in MLFLOW_UNSCOPED
    return "{owner}" in template or "{upload_id}" in template or template in QUERIES




def query_of(path: str) -> dict[str, str] | None:
    """What a route needs in its query to name something of the owner's."""
    if path.endswith("/diff"):
        return {"from": "1", "to": "1"}
    if path.endswith("/preview"):
        return {"path": "s.txt"}
    if path.startswith(MLFLOW):
        return {"run_id": WORLD_RUN["run_id"], "experiment_id": "0", "experiment_name": "Default"}
    return QUERIES.get(path)


def request(platform: Platform, method: str, path: str, user: User | None) -> requests.Response:
    base = platform.url + "services/floyd"
    headers = user.headers if user else {}
    body = {"run_id": WORLD_RUN["run_id"]} if path.startswith(MLFLOW) else {}
    kwargs = {"json": body} if method in ("post", "put", "patch") else {}
    return requests.request(method.upper(), base + path, headers=headers, allow_redirects=False, timeout=30,
                            params=query_of(path), **kwargs)


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
        want = 501 if template in NOT_IMPLEMENTED else 403 if template in ADMIN_API and who is owner else 200
        assert r.status_code == want, (who.name, template, method, r.status_code, r.text[:300])


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
    assert "secret-model" not in str(intruder.api("GET", "models", params={"owner": "walk-owner"}).json())
    assert "secret-model" in str(platform.admin.api("GET", "models", params={"owner": "walk-owner"}).json())
