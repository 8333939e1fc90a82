"""Comparing runs on a real platform: three runs of one sweep with different params and loss
curves; the API (jobs or a sweep, ranked), ``floyd compare``, and bad input."""

from __future__ import annotations

import json

import pytest

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform

TRAIN = b"""
import json, os
lr = float(os.environ["FLOYD_PARAM_LR"])
for step in range(5):
    print(json.dumps({"metric": "loss", "value": lr * (5 - step), "step": step}), flush=True)
print(json.dumps({"metric": "acc", "value": 1 - lr, "step": 4}), flush=True)
"""


@pytest.fixture(scope="module")
def sweep(platform: Platform, workspace_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    user = platform.user("cmp-user")
    result = submit(user, "cmp-proj", {"train.py": TRAIN}, tmp_path_factory.mktemp("cmp"), command="python train.py",
                    params={"batch": "32"}, sweep={"grid": {"lr": ["0.3", "0.1", "0.2"]}})
    jobs = [j["id"] for j in result["jobs"]]
    for job in jobs:
        wait_state(user, job, {"succeeded"})
    return {"group": result["group"]["id"], "jobs": jobs}


def test_compare_jobs_params_that_differ_and_metric_stats(platform: Platform, sweep: dict) -> None:
    user = platform.user("cmp-user")
    r = user.api("GET", "compare", params={"jobs": ",".join(sweep["jobs"])})
    assert r.status_code == 200, r.text
    data = r.json()
    assert [run["id"] for run in data["runs"]] == sweep["jobs"]
    assert data["params"] == ["batch", "lr"] and data["differing"] == ["lr"]
    assert data["metrics"] == ["acc", "loss"]
    first = data["runs"][0]  # lr 0.3: loss 1.5 … 0.3
    assert first["metrics"]["loss"]["last"] == pytest.approx(0.3)
    assert first["metrics"]["loss"]["max"] == pytest.approx(1.5) and first["metrics"]["loss"]["count"] == 5
    assert "series" not in first
    with_series = user.api("GET", "compare", params={"jobs": sweep["jobs"][0], "series": "1"}).json()
    assert [p["step"] for p in with_series["runs"][0]["series"]["loss"]] == [0, 1, 2, 3, 4]


def test_a_sweep_ranked_by_a_metric(platform: Platform, sweep: dict) -> None:
    user = platform.user("cmp-user")
    lowest = user.api("GET", "compare", params={"group": sweep["group"], "rank": "loss"}).json()
    assert [r["params"]["lr"] for r in lowest["runs"]] == ["0.1", "0.2", "0.3"]
    highest = user.api("GET", "compare", params={"group": sweep["group"], "rank": "acc", "order": "max"}).json()
    assert [r["params"]["lr"] for r in highest["runs"]] == ["0.1", "0.2", "0.3"]
    assert highest["rank"] == {"metric": "acc", "order": "max"}


@pytest.mark.parametrize("params,status", [
    ({}, 400), ({"jobs": ""}, 400), ({"jobs": "a/../b/1"}, 400), ({"jobs": "cmp-proj/x"}, 400),
    ({"jobs": ",".join(["cmp-proj/1"] * 101)}, 400), ({"group": "x"}, 400), ({"group": "-1"}, 400),
    ({"jobs": "cmp-proj/1", "group": "1"}, 400), ({"jobs": "cmp-proj/1", "rank": "nope"}, 400),
    ({"jobs": "cmp-proj/1", "rank": "loss", "order": "up"}, 400), ({"jobs": "cmp-proj/999"}, 404),
    ({"group": "2147483647"}, 404),
])
def test_bad_compare_requests_are_4xx(platform: Platform, sweep: dict, params: dict, status: int) -> None:
    r = platform.user("cmp-user").api("GET", "compare", params=params)
    assert r.status_code == status, r.text
    assert r.json()["message"]


def test_someone_elses_runs_are_not_found(platform: Platform, sweep: dict) -> None:
    other = platform.user("cmp-other")
    assert other.api("GET", "compare", params={"jobs": sweep["jobs"][0]}).status_code == 404
    assert other.api("GET", "compare", params={"group": sweep["group"]}).status_code == 404


def test_cli_compare(platform: Platform, sweep: dict) -> None:
    user = platform.user("cmp-user")
    out = user.cli("compare", *sweep["jobs"]).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["PARAM", *sweep["jobs"]]
    assert lines[1].split() == ["lr", '"0.3"', '"0.1"', '"0.2"']
    assert any(line.startswith("loss") and "0.3 (0.3..1.5)" in line for line in lines)
    ranked = json.loads(user.cli("compare", "--group", str(sweep["group"]), "--rank", "loss", "--json").stdout)
    assert [r["params"]["lr"] for r in ranked["runs"]] == ["0.1", "0.2", "0.3"]
    bad = user.cli("compare", check=False)
    assert bad.returncode == 2 and "Name the runs" in bad.stderr
