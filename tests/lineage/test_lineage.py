"""Lineage on a real platform: a dataset version → a job → its output committed as a dataset
version → a restarted job on it → an endpoint serving that job's output, and the same job's
output registered as a model version that an endpoint serves by following an alias; the graph
from any of them, as the owner and as someone else, through the API and ``floyd lineage``; bad refs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform, User
from tests.support.serving import ASGI_OK_APP, deploy_ready

TRAIN = b"""
import json, os
lr = float(os.environ.get("FLOYD_PARAM_LR", "0.1"))
for step in range(4):
    print(json.dumps({"metric": "loss", "value": lr * (4 - step), "step": step}), flush=True)
open("/floyd/output/model.txt", "w").write("lr=%s" % lr)
"""


def upload(user: User, name: str, data: bytes) -> None:
    user.api("POST", "datasets", json={"name": name})
    manifest = [{"path": "d.txt", "size": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}]
    up = user.api("POST", f"datasets/{user.name}/{name}/uploads", json={"manifest": manifest}).json()
    user.api("PUT", f"uploads/{up['id']}/blobs/{manifest[0]['hash']}", data=data)
    assert user.api("POST", f"uploads/{up['id']}/commit").status_code == 201


@pytest.fixture(scope="module")
def chain(platform: Platform, workspace_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    owner = platform.user("lin-owner")
    tmp = tmp_path_factory.mktemp("lineage")
    upload(owner, "lin-raw", b"lineage raw bytes, stored by no other test")
    first = submit(owner, "lin-proj", {"train.py": TRAIN}, tmp, command="python train.py",
                   inputs=[{"source": "lin-raw:1", "mount": "raw"}], params={"lr": "0.1"})["job"]
    wait_state(owner, first["id"], {"succeeded"})
    owner.api("POST", "datasets", json={"name": "lin-feat", "public": True})
    r = owner.api("POST", "datasets/lin-owner/lin-feat/from-job", json={"job": first["id"]})
    assert r.status_code == 201, r.text
    second = owner.api("POST", f"jobs/{first['id']}/restart",
                       json={"inputs": [{"source": "lin-feat:1", "mount": "feat"}], "params": {"lr": "0.2"}})
    assert second.status_code == 201, second.text
    second_id = second.json()["job"]["id"]
    wait_state(owner, second_id, {"succeeded"})
    deploy_ready(owner, "lin-ep", {"app.py": ASGI_OK_APP}, tmp, entry="app.py",
                 inputs=[{"source": f"{second_id}/output", "mount": "model"}])
    return {"first": first["id"], "second": second_id, "snapshot": first["snapshot"]}


def graph(user: User, ref: str, **params: str) -> dict:
    r = user.api("GET", "lineage", params={"ref": ref, **params})
    assert r.status_code == 200, r.text
    return r.json()


def edges(g: dict) -> set[tuple[str, str]]:
    return {(e["from"], e["to"]) for e in g["edges"]}


def test_endpoint_lineage_goes_up_to_the_first_dataset(platform: Platform, chain: dict[str, str]) -> None:
    owner = platform.user("lin-owner")
    g = graph(owner, "lin-ep")  # the endpoint: its serving version
    first, second = f"job:{chain['first']}", f"job:{chain['second']}"
    snap = f"snapshot:lin-owner/lin-proj/{chain['snapshot']}"
    assert g["root"] == "endpoint:lin-owner/lin-ep:1" and not g["truncated"]
    assert {(second, g["root"]), ("dataset:lin-owner/lin-feat:1", second), (first, second), (snap, second),
            (first, "dataset:lin-owner/lin-feat:1"), ("dataset:lin-owner/lin-raw:1", first), (snap, first)} <= edges(g)
    nodes = {n["ref"]: n for n in g["nodes"]}
    assert nodes[first]["state"] == "succeeded" and nodes[first]["kind"] == "job"
    assert nodes[first]["url"] == f"/services/floyd/jobs/{chain['first']}"
    assert nodes["dataset:lin-owner/lin-raw:1"]["url"] == "/services/floyd/datasets/lin-owner/lin-raw?version=1"
    assert nodes[g["root"]]["state"] == "ready" and nodes[g["root"]]["url"] == "/services/floyd/serving/lin-owner/lin-ep"
    assert set(nodes[snap]) == {"kind", "ref", "label", "state", "url"}


def test_dataset_lineage_goes_down_to_the_endpoint(platform: Platform, chain: dict[str, str]) -> None:
    owner = platform.user("lin-owner")
    g = graph(owner, "lin-raw@1")
    refs = {n["ref"] for n in g["nodes"]}
    assert {f"job:{chain['first']}", "dataset:lin-owner/lin-feat:1", f"job:{chain['second']}",
            "endpoint:lin-owner/lin-ep:1"} <= refs
    # depth 1: the job that read it, and a note that there is more
    near = graph(owner, "dataset:lin-owner/lin-raw:1", depth="1")
    assert {n["ref"] for n in near["nodes"]} == {"dataset:lin-owner/lin-raw:1", f"job:{chain['first']}"}
    assert near["truncated"] is True


def test_others_see_only_what_they_may(platform: Platform, chain: dict[str, str], tmp_path: Path) -> None:
    intruder = platform.user("lin-other")
    for ref in (chain["first"], "lin-owner/lin-ep", "lin-owner/lin-raw@1", f"snapshot:lin-owner/lin-proj/{chain['snapshot']}"):
        r = intruder.api("GET", "lineage", params={"ref": ref})
        assert r.status_code == 404, (ref, r.text)
        assert "not found" in r.json()["message"]
    # lin-feat is public: its graph shows it, and nothing private of its owner
    g = graph(intruder, "lin-owner/lin-feat@1")
    assert [n["ref"] for n in g["nodes"]] == ["dataset:lin-owner/lin-feat:1"] and g["edges"] == []
    # an admin sees everything
    assert len(graph(platform.admin, "lin-owner/lin-feat@1")["nodes"]) >= 4


@pytest.mark.parametrize("ref,status", [
    ("", 400), ("job:../x/1", 400), ("lin-owner/lin-proj/x1", 400), ("mnist@x", 400), ("a/b/c/d/e", 400),
    ("bad\x00name", 400), ("snapshot:lin-owner/lin-proj/sha256:xyz", 400), ("x" * 500, 400),
    ("lin-owner/lin-proj/999", 404), ("lin-owner/lin-raw@9", 404), ("lin-owner/no-such-ep", 404),
    ("lin-owner/lin-proj/99999999999", 404),
])
def test_bad_refs_are_4xx(platform: Platform, chain: dict[str, str], ref: str, status: int) -> None:
    r = platform.user("lin-owner").api("GET", "lineage", params={"ref": ref})
    assert r.status_code == status, r.text
    assert r.json()["message"]


def test_bad_depth_is_400(platform: Platform, chain: dict[str, str]) -> None:
    owner = platform.user("lin-owner")
    for depth in ("0", "1001", "x"):
        assert owner.api("GET", "lineage", params={"ref": "lin-ep", "depth": depth}).status_code == 400


def test_cli_prints_the_tree_and_json(platform: Platform, chain: dict[str, str]) -> None:
    owner = platform.user("lin-owner")
    out = owner.cli("lineage", "lin-ep").stdout
    assert "made from" in out and chain["second"] in out and "lin-owner/lin-raw:1" in out
    data = json.loads(owner.cli("lineage", chain["first"], "--json").stdout)
    assert data["root"] == f"job:{chain['first']}"
    assert {"from": f"job:{chain['first']}", "to": "dataset:lin-owner/lin-feat:1"} in data["edges"]
    down = owner.cli("lineage", "lin-feat@1").stdout
    assert "made into" in down and "lin-ep v1" in down
    bad = owner.cli("lineage", "nope@x", check=False)
    assert bad.returncode == 4 and "Invalid version" in bad.stderr + bad.stdout


@pytest.fixture(scope="module")
def served_model(platform: Platform, chain: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The second job's output registered as lin-owner/lin-model:1, aliased production, and an
    endpoint following the alias."""
    owner = platform.user("lin-owner")
    r = owner.api("POST", "models/lin-owner/lin-model/versions", json={"from": f"{chain['second']}/output"})
    assert r.status_code == 201, r.text
    assert owner.api("PUT", "models/lin-owner/lin-model/aliases/production", json={"version": 1}).status_code == 200
    v = deploy_ready(owner, "lin-model-ep", {"app.py": ASGI_OK_APP}, tmp_path_factory.mktemp("lineage-model"),
                     entry="app.py", model="lin-model@production")
    assert owner.api("GET", "endpoints/lin-owner/lin-model-ep").json()["following"] == "lin-owner/lin-model@production"
    return {"endpoint": f"endpoint:lin-owner/lin-model-ep:{v['number']}", "model": "model:lin-owner/lin-model:1"}


def test_endpoint_on_a_model_walks_up_to_the_job_and_its_inputs(platform: Platform, chain: dict[str, str],
                                                                served_model: dict) -> None:
    owner = platform.user("lin-owner")
    g = graph(owner, "lin-model-ep")
    model, second = served_model["model"], f"job:{chain['second']}"
    snap = f"snapshot:lin-owner/lin-proj/{chain['snapshot']}"
    assert g["root"] == served_model["endpoint"]
    assert {(model, g["root"]), (second, model), (snap, second), ("dataset:lin-owner/lin-feat:1", second),
            ("dataset:lin-owner/lin-raw:1", f"job:{chain['first']}")} <= edges(g)
    nodes = {n["ref"]: n for n in g["nodes"]}
    assert nodes[model]["kind"] == "model" and nodes[model]["url"] == "/services/floyd/models/lin-owner/lin-model"
    assert not [ref for ref in nodes if ref.startswith("dataset:lin-owner/lin-model")]  # not also a dataset
    assert graph(owner, "model:lin-model@production")["root"] == model


def test_job_lineage_walks_down_to_the_model_and_its_endpoint(platform: Platform, chain: dict[str, str],
                                                              served_model: dict) -> None:
    owner = platform.user("lin-owner")
    g = graph(owner, f"job:{chain['second']}")
    assert {(f"job:{chain['second']}", served_model["model"]), (served_model["model"], served_model["endpoint"])} <= edges(g)
    out = owner.cli("lineage", "model:lin-model@production").stdout
    assert "model" in out and "lin-owner/lin-model:1" in out and "made into" in out and "lin-model-ep" in out
    data = json.loads(owner.cli("lineage", chain["second"], "--json").stdout)
    assert served_model["model"] in {n["ref"] for n in data["nodes"]}
    page = owner.api("GET", "../../models/lin-owner/lin-model")
    assert "lineage?ref=model:" + quote("lin-owner/lin-model:1") in page.text


def test_others_get_404_for_a_private_model(platform: Platform, chain: dict[str, str], served_model: dict) -> None:
    intruder = platform.user("lin-other")
    for ref in ("model:lin-owner/lin-model:1", "model:lin-owner/lin-model@production", "model:lin-owner/lin-model"):
        r = intruder.api("GET", "lineage", params={"ref": ref})
        assert r.status_code == 404 and "not found" in r.json()["message"], (ref, r.text)
    # lin-feat is public and the model was made from a job that read it: the model stays hidden
    g = graph(intruder, "lin-owner/lin-feat@1")
    assert not [n for n in g["nodes"] if n["kind"] == "model"]
    r = platform.user("lin-owner").api("GET", "lineage", params={"ref": "model:lin-model:x"})
    assert r.status_code == 400 and "model" in r.json()["message"].lower()
