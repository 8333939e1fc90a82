"""Pipelines on the real platform: steps as real jobs in containers, started as their inputs
exist, skipped after a failure, reused when nothing they depend on changed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from floyd.client.transfer import upload_code
from tests.support.docker import workspace_image  # noqa: F401  (fixture)
from tests.support.jobs import client_for
from tests.support.platform import Platform, User, as_json, built, write_tree

# Each step writes what depends on its own code, so changing a step's file changes its output.
PREPARE = b"""# pipelines test: prepare
import os
os.makedirs("/floyd/output/clean", exist_ok=True)
open("/floyd/output/clean/data.txt", "w").write("rows=" + os.environ.get("FLOYD_PARAM_ROWS", "3"))
print("prepared", flush=True)
"""
TRAIN = b"""# pipelines test: train v1
import os
data = open("/floyd/input/clean/data.txt").read()
print("train read", data, flush=True)
open("/floyd/output/model.txt", "w").write(open(__file__).read() + data)
"""
EVALUATE = b"""# pipelines test: evaluate
print("evaluated", open("/floyd/input/train/model.txt").read().splitlines()[0], flush=True)
"""
FLOYD_YML = """
pipelines:
  nightly:
    steps:
      prepare: {command: python prep/prepare.py, code: [prep/]}
      train:
        command: python train/train.py
        code: [train/]
        input: [{from: prepare/output/clean, destination: clean}]
      evaluate:
        command: python eval/evaluate.py
        code: eval/
        input: [{from: train}]
"""


def wait_run(user: User, run_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = user.api("GET", f"pipelines/{run_id}").json()
        if run["state"] != "running" or time.monotonic() > deadline:
            assert run["state"] != "running", run
            return run
        time.sleep(0.3)


def states(run: dict) -> dict[str, str]:
    return {st["name"]: st["state"] for st in run["steps"]}


@pytest.fixture(scope="module")
def piper(platform: Platform) -> User:
    return platform.user("piper")


@pytest.fixture(scope="module")
def project(piper: User, tmp_path_factory: pytest.TempPathFactory, workspace_image: str) -> Path:  # noqa: F811
    work = write_tree(tmp_path_factory.mktemp("pipes") / "nightly", {
        "prep/prepare.py": PREPARE, "train/train.py": TRAIN, "eval/evaluate.py": EVALUATE,
        "floyd.yml": FLOYD_YML.encode(),
    })
    piper.cli("init", "nightly", cwd=work)
    (work / "floyd.yml").write_text(FLOYD_YML)  # init keeps an existing floyd.yml; be sure
    return work


def test_run_reuse_change_one_step_and_no_reuse(piper: User, project: Path) -> None:
    first = piper.cli("pipeline", "run", "nightly", "--follow", "--json", "--save-output", "prepare=nightly-clean",
                      cwd=project)
    run1 = as_json(first)
    assert run1["state"] == "succeeded" and set(states(run1).values()) == {"succeeded"}, run1
    jobs1 = {st["name"]: st["job_number"] for st in run1["steps"]}
    assert len(set(jobs1.values())) == 3
    log = piper.cli("pipeline", "logs", run1["id"], "--step", "train", cwd=project).stdout
    assert "train read rows=3" in log
    # The prepare step's output became a dataset version, its files linked, not copied.
    saved = next(st["saved_as"] for st in run1["steps"] if st["name"] == "prepare")
    assert saved == "piper/nightly-clean:1"
    files = piper.api("GET", "datasets/piper/nightly-clean/versions/1/files", params={"recursive": "1"}).json()
    assert [f["path"] for f in files["files"]] == ["clean/data.txt"]
    root = piper.platform.root
    output = root / "jobs" / "piper" / "nightly" / str(jobs1["prepare"]) / "output" / "clean" / "data.txt"
    version = built(root / "datasets" / "piper" / "nightly-clean" / "1" / "clean" / "data.txt")
    assert output.stat().st_ino == version.stat().st_ino  # one file, linked

    # Nothing changed: every step is reused, no job runs.
    run2 = as_json(piper.cli("pipeline", "run", "nightly", "--follow", "--json", cwd=project))
    assert states(run2) == {"prepare": "reused", "train": "reused", "evaluate": "reused"}
    assert {st["name"]: st["reused_from"] for st in run2["steps"]} == jobs1
    assert all(st["reason"] == f"reused from job {jobs1[st['name']]}" for st in run2["steps"])
    status = piper.cli("pipeline", "status", run2["id"], cwd=project).stdout
    assert f"reused from job {jobs1['train']}" in status

    # One file of one step changes: exactly that step and its descendants run again.
    (project / "train" / "train.py").write_bytes(TRAIN.replace(b"train v1", b"train v2"))
    run3 = as_json(piper.cli("pipeline", "run", "nightly", "--follow", "--json", cwd=project))
    assert states(run3) == {"prepare": "reused", "train": "succeeded", "evaluate": "succeeded"}, run3
    assert next(st for st in run3["steps"] if st["name"] == "prepare")["reused_from"] == jobs1["prepare"]
    # The new train job mounts the reused job's output itself: nothing was copied for the reuse.
    train3 = piper.api("GET", f"jobs/{next(st['job'] for st in run3['steps'] if st['name'] == 'train')}").json()
    assert [i["source"] for i in train3["inputs"]] == [f"piper/nightly/{jobs1['prepare']}/output/clean"]
    listing = piper.cli("pipeline", "status", cwd=project).stdout
    assert run1["id"] in listing and run3["id"] in listing and "nightly" in listing

    # A parameter is part of the key; --no-reuse runs everything.
    run4 = as_json(piper.cli("pipeline", "run", "nightly", "--param", "prepare.ROWS=5", "--follow", "--json",
                             cwd=project))
    assert states(run4) == {"prepare": "succeeded", "train": "succeeded", "evaluate": "succeeded"}
    assert "train read rows=5" in piper.cli("pipeline", "logs", run4["id"], cwd=project).stdout
    run5 = as_json(piper.cli("pipeline", "run", "nightly", "--no-reuse", "--follow", "--json", cwd=project))
    assert set(states(run5).values()) == {"succeeded"} and run5["no_reuse"] is True


def submit_steps(user: User, project: str, files: dict[str, bytes], tmp: Path, steps: dict, **extra) -> dict:
    user.api("POST", "projects", json={"name": project})
    up = upload_code(client_for(user), user.name, project, write_tree(tmp / f"code-{time.monotonic_ns()}", files))
    r = user.api("POST", "pipelines", json={"project": f"{user.name}/{project}", "snapshot": up.version["id"],
                                            "pipeline": "p", "steps": steps, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_failed_step_skips_descendants_not_siblings_and_diamond_runs_in_parallel(
        piper: User, tmp_path: Path, workspace_image: str) -> None:  # noqa: F811
    files = {"ok.py": b"# pipelines test: diamond\nimport time; time.sleep(2); print('ok', flush=True)\n",
             "bad.py": b"# pipelines test: diamond\nimport time; time.sleep(2); raise SystemExit(3)\n"}
    steps = {"root": {"command": "python ok.py"},
             "left": {"command": "python ok.py", "params": {"side": "l"}, "inputs": [{"from": "root"}]},
             "right": {"command": "python ok.py", "params": {"side": "r"}, "inputs": [{"from": "root"}]},
             "broken": {"command": "python bad.py", "inputs": [{"from": "root"}]},
             "join": {"command": "python ok.py", "inputs": [{"from": "left"}, {"from": "right"}]},
             "after_broken": {"command": "python ok.py", "inputs": [{"from": "broken"}]},
             "last": {"command": "python ok.py", "inputs": [{"from": "after_broken"}, {"from": "join"}]}}
    run = submit_steps(piper, "diamond", files, tmp_path, steps, no_reuse=True)
    assert run["state"] == "running" and {st["state"] for st in run["steps"]} <= {"waiting", "running"}
    run = wait_run(piper, run["id"])
    assert states(run) == {"root": "succeeded", "left": "succeeded", "right": "succeeded", "broken": "failed",
                           "join": "succeeded", "after_broken": "skipped", "last": "skipped"}, run
    assert run["state"] == "failed"
    by = {st["name"]: st for st in run["steps"]}
    assert by["after_broken"]["reason"] == "upstream failed (broken)" and by["after_broken"]["job"] is None
    assert by["join"]["needs"] == ["left", "right"]
    # The three steps after root ran side by side, but never more than the user's queue limit
    # (c.JobQueue.max_running_per_user, 2 on the test platform) at once.
    spans = [(job["started_at"], job["finished_at"]) for job in
             (piper.api("GET", f"jobs/{by[n]['job']}").json() for n in ("left", "right", "broken"))]
    pairs = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]]
    assert any(a[0] < b[1] and b[0] < a[1] for a, b in pairs), spans
    assert max(start for start, _ in spans) >= min(end for _, end in spans), spans


def test_stop_skips_what_has_not_started(piper: User, tmp_path: Path, workspace_image: str) -> None:  # noqa: F811
    files = {"slow.py": b"# pipelines test: stop\nimport time; print('slow', flush=True); time.sleep(120)\n"}
    run = submit_steps(piper, "stopping", files, tmp_path, {
        "slow": {"command": "python slow.py"}, "next": {"command": "python slow.py", "inputs": [{"from": "slow"}]}})
    deadline = time.monotonic() + 60
    while piper.api("GET", f"pipelines/{run['id']}").json()["steps"][0]["job_state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    stopped = piper.api("POST", f"pipelines/{run['id']}/stop").json()
    assert stopped["state"] == "stopped", stopped
    assert states(stopped) == {"slow": "stopped", "next": "skipped"}
    assert piper.api("POST", f"pipelines/{run['id']}/stop").status_code == 409


@pytest.mark.parametrize("change, status, message", [
    ({"steps": {"a": {"command": "x", "inputs": [{"from": "b"}]}, "b": {"command": "y", "inputs": [{"from": "a"}]}}},
     400, "is a cycle"),
    ({"steps": {"a": {"command": "x", "inputs": [{"from": "ghost/output"}]}}}, 400, "unknown step 'ghost'"),
    ({"steps": {"a": {"command": "x", "comand": "y"}}}, 400, "steps.a: unknown key(s) comand"),
    ({"steps": {"a": {"command": "x"}, "b": {"command": "x", "inputs": [{"from": "a/output/m"}, {"from": "a", "mount": "m"}]}}},
     400, "steps.b.inputs: two step outputs would be mounted at /floyd/input/m"),
    ({"pipeline": "p" * 4096}, 400, "Invalid pipeline name"),
    ({"steps": {"n" * 4096: {"command": "x"}}}, 400, "Invalid step name"),
    ({"steps": {"a": {"command": "x", "inputs": [{"from": "a/output/../../x"}]}}}, 400, "'..'"),
    ({"steps": {"a": {"command": "x", "environment": "nope"}}}, 422, "steps.a:"),
    ({"steps": {"a": {"command": "x", "inputs": [{"source": "no-such-data"}]}}}, 404, "steps.a: Dataset"),
    ({"save_outputs": {"zzz": "d"}}, 400, "save_outputs: no step 'zzz'"),
    ({"no_reuse": "yes"}, 400, "'no_reuse' must be true or false"),
    ({"extra": 1}, 400, "Unknown field(s) extra"),
])
def test_bad_pipelines_are_4xx_and_store_nothing(piper: User, tmp_path: Path, change: dict, status: int,
                                                  message: str) -> None:
    piper.api("POST", "projects", json={"name": "badpipes"})
    up = upload_code(client_for(piper), "piper", "badpipes",
                     write_tree(tmp_path / "code", {"x.py": b"# pipelines test: bad input\n"}))
    body = {"project": "piper/badpipes", "snapshot": up.version["id"], "pipeline": "p",
            "steps": {"a": {"command": "x"}}, **change}
    r = piper.api("POST", "pipelines", json=body)
    assert r.status_code == status and message in r.json()["message"], r.text
    assert piper.api("GET", "pipelines", params={"project": "badpipes"}).json()["items"] == []
    assert piper.api("GET", "jobs", params={"project": "badpipes"}).json()["items"] == []


def test_cli_cycle_is_an_error_before_any_upload(piper: User, tmp_path: Path) -> None:
    work = write_tree(tmp_path / "cyclic", {"a.py": b"# pipelines test: cli cycle\n", "floyd.yml": (
        b"pipelines:\n  p:\n    steps:\n      a: {command: python a.py, input: [{from: b}]}\n"
        b"      b: {command: python a.py, input: [{from: a}]}\n")})
    piper.cli("init", "cyclic", cwd=work)
    proc = piper.cli("pipeline", "run", "p", cwd=work, check=False)
    assert proc.returncode == 3 and "take inputs from each other in a cycle" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    snapshots = piper.api("GET", "projects/piper/cyclic").json()
    assert json.dumps(snapshots).count("sha256:") == 0
    assert piper.api("GET", "pipelines", params={"project": "cyclic"}).json()["items"] == []
