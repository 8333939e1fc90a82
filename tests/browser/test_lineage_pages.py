"""A person in a browser follows the trace and compares runs.

Lineage: from a job's page to its lineage graph (nodes coloured by kind, the root marked), a
click on the dataset version it made opens that dataset's page, whose own lineage link draws the
same chain from there; the endpoint's page links to its lineage too. The job's output is also a
model version the endpoint mounts: its node opens the model page, whose lineage link draws it. Compare: on the jobs page
two runs are ticked and compared (their loss curves on one chart, the params table with the one
that differs), and the sweep's page ranks its runs by a chosen metric.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.support.browser import login
from tests.support.docker import workspace_image  # noqa: F401
from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform
from tests.support.serving import ASGI_OK_APP, deploy_ready

TRAIN = b"""
import json, os
lr = float(os.environ.get("FLOYD_PARAM_LR", "0.5"))
for step in range(4):
    print(json.dumps({"metric": "loss", "value": lr * (4 - step), "step": step}), flush=True)
open("/floyd/output/model.txt", "w").write("lr=%s" % lr)
"""


@pytest.fixture(scope="module")
def world(platform: Platform, workspace_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    admin = platform.admin
    tmp = tmp_path_factory.mktemp("lineage-pages")
    data = b"bytes of the lineage page test, stored by no other test"
    admin.api("POST", "datasets", json={"name": "page-raw"})
    manifest = [{"path": "raw.txt", "size": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}]
    up = admin.api("POST", "datasets/admin/page-raw/uploads", json={"manifest": manifest}).json()
    admin.api("PUT", f"uploads/{up['id']}/blobs/{manifest[0]['hash']}", data=data)
    assert admin.api("POST", f"uploads/{up['id']}/commit").status_code == 201
    sweep = submit(admin, "page-proj", {"train.py": TRAIN}, tmp, command="python train.py",
                   inputs=[{"source": "page-raw:1", "mount": "raw"}], sweep={"grid": {"lr": ["0.5", "0.25"]}})
    jobs = [j["id"] for j in sweep["jobs"]]
    for job in jobs:
        wait_state(admin, job, {"succeeded"})
    admin.api("POST", "datasets", json={"name": "page-model"})
    assert admin.api("POST", "datasets/admin/page-model/from-job", json={"job": jobs[0]}).status_code == 201
    r = admin.api("POST", "models/admin/page-iris/versions", json={"from": jobs[0]})
    assert r.status_code == 201, r.text
    admin.api("PUT", "models/admin/page-iris/aliases/production", json={"version": 1})
    deploy_ready(admin, "page-ep", {"app.py": ASGI_OK_APP}, tmp, entry="app.py",
                 inputs=[{"source": "page-model:1", "mount": "model"}], model="page-iris@production")
    return {"jobs": jobs, "group": sweep["group"]["id"]}


def test_lineage_from_job_to_dataset_and_endpoint(page, platform: Platform, world: dict) -> None:
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    base = platform.url + "services/floyd/"
    job = world["jobs"][0]
    page.goto(base + "jobs/" + job)
    page.click("#lineage-link")
    page.wait_for_selector("svg.lineage-graph g.node")
    root = page.locator("g.node.root")
    assert root.get_attribute("data-ref") == f"job:{job}"
    kinds = set(page.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.kind)"))
    assert kinds == {"job", "dataset", "snapshot", "endpoint", "model"}
    fills = page.eval_on_selector_all(
        "g.node", "els => Object.fromEntries(els.map(e => [e.dataset.kind, getComputedStyle(e.querySelector('rect')).fill]))")
    assert len(set(fills.values())) == 5, fills  # one colour per kind
    assert "state-ok" in (root.get_attribute("class") or "")  # succeeded: the state's outline
    assert page.locator("path.edge").count() >= 4
    # click the dataset version the job made: its page, and its own lineage from there
    page.click('g.node[data-ref="dataset:admin/page-model:1"]')
    page.wait_for_url("**/datasets/admin/page-model?version=1")
    page.click("#lineage-link")
    page.wait_for_selector("svg.lineage-graph g.node.root")
    assert page.locator("g.node.root").get_attribute("data-ref") == "dataset:admin/page-model:1"
    assert page.locator('g.node[data-ref="endpoint:admin/page-ep:1"]').count() == 1
    assert page.locator(f'g.node[data-ref="job:{job}"]').count() == 1
    page.goto(base + "serving/admin/page-ep")
    page.click("#lineage-link")
    page.wait_for_selector("svg.lineage-graph g.node.root")
    assert page.locator("g.node.root").get_attribute("data-ref") == "endpoint:admin/page-ep:1"
    assert page.locator("g.node.root").get_attribute("data-state") == "ready"
    assert page.locator('g.node[data-ref="model:admin/page-iris:1"]').count() == 1  # the model it mounts
    # the model version's node opens the model page, whose lineage link draws it from there
    page.click('g.node[data-ref="model:admin/page-iris:1"]')
    page.wait_for_url("**/models/admin/page-iris")
    page.click("#versions a.lineage-link")
    page.wait_for_selector("svg.lineage-graph g.node.root")
    assert page.locator("g.node.root").get_attribute("data-ref") == "model:admin/page-iris:1"
    assert page.locator("g.node.root").get_attribute("data-kind") == "model"
    assert page.locator(f'g.node[data-ref="job:{job}"]').count() == 1
    assert page.locator('g.node[data-ref="endpoint:admin/page-ep:1"]').count() == 1


def test_tick_runs_and_compare_their_curves(page, platform: Platform, world: dict) -> None:
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    page.goto(platform.url + "services/floyd/jobs")
    for job in world["jobs"]:
        page.check(f'tr[data-job="{job}"] input.pick')
    page.click("button#compare")
    page.wait_for_url("**/compare?jobs=*")
    page.wait_for_selector('#compare-charts figure[data-series="loss"] polyline')
    lines = page.eval_on_selector_all('#compare-charts figure[data-series="loss"] polyline',
                                      "els => els.map(e => e.dataset.series)")
    assert sorted(set(lines)) == sorted(world["jobs"])  # one curve per run, on one chart
    assert page.locator("#params tr.differs th").all_inner_texts() == ["lr"]
    assert page.locator("#metrics tr[data-metric=loss] td").count() == 2


def test_sweep_page_ranks_runs_by_a_metric(page, platform: Platform, world: dict) -> None:
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    page.goto(platform.url + "services/floyd/jobs/" + world["jobs"][0])
    page.click("#sweep-link")
    page.wait_for_selector("#ranking tbody tr")
    page.select_option("#rank-metric", "loss")
    page.select_option("#rank-order", "min")
    page.wait_for_function(
        f"document.querySelector('#ranking tbody tr').dataset.job === '{world['jobs'][1]}'")  # lr 0.25: lowest loss
    page.select_option("#rank-order", "max")
    page.wait_for_function(f"document.querySelector('#ranking tbody tr').dataset.job === '{world['jobs'][0]}'")
