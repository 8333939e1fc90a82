"""Queue limits, stop, max runtime, bad specs, GPUs, notebooks, sweeps, restart, outputs as datasets."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.jobs import client_for, submit, wait_state
from tests.support.platform import Platform, built

SLEEPER = {"run.py": b"import sys, time\nprint('up', flush=True)\ntime.sleep(float(sys.argv[1]))\nprint('done', flush=True)\n"}


def test_bad_specs_are_refused_before_anything_runs(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    user = platform.user("badspec")
    ok = submit(user, "proj", SLEEPER, tmp_path, command="python run.py 0")["job"]
    wait_state(user, ok["id"], {"succeeded"})
    other = platform.user("badspec-other")
    other.api("POST", "datasets", json={"name": "private"})
    base = {"project": "badspec/proj", "snapshot": ok["snapshot"], "command": "true"}
    cases = [
        ({"environment": "nope"}, 422, "Unknown environment"),
        ({"gpus": 9}, 422, "this platform has 2"),
        ({"environment": "cpu", "gpus": 1}, 422, "does not allow GPUs"),
        ({"inputs": [{"source": "badspec-other/private:1", "mount": "x"}]}, 404, "not found"),
        ({"inputs": [{"source": "badspec/proj/1/output", "mount": "a/b"}]}, 400, "mount name"),
        ({"inputs": [{"source": "badspec/proj/1/output", "mount": ".."}]}, 400, "mount name"),
        ({"max_runtime": -5}, 422, "max_runtime"),
        ({"cpus": -1}, 422, "cpus"),
        ({"memory": "-1G"}, 422, "memory"),
        ({"snapshot": "sha256:" + "0" * 64}, 404, "no code snapshot"),
        ({"project": "badspec-other/proj"}, 404, "not found"),
        ({"command": "", "notebook": ""}, 400, "either 'command'"),
        ({"notebook": "missing.ipynb", "command": None}, 422, "not in the code snapshot"),
        ({"params": {"not valid": 1}}, 400, "parameter name"),
        ({"sweep": {"grid": {"lr": []}}}, 400, "non-empty list"),
        ({"colour": "red"}, 400, "Unknown field"),
    ]
    before = len(user.api("GET", "jobs").json()["items"])
    for change, status, words in cases:
        r = user.api("POST", "jobs", json={**base, **change})
        assert r.status_code == status, (change, r.text)
        assert words in r.json()["message"], (change, r.text)
    assert len(user.api("GET", "jobs").json()["items"]) == before


def test_stop_max_runtime_and_queue_limits(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    user = platform.user("queuer")
    # Per-user limit is 2 in the test platform: the third job waits, and starts as soon as one ends.
    jobs = [submit(user, "q", SLEEPER, tmp_path, command=f"python run.py {d}")["job"] for d in (60, 60, 1)]
    wait_state(user, jobs[0]["id"], {"running"})
    wait_state(user, jobs[1]["id"], {"running"})
    third = user.api("GET", f"jobs/{jobs[2]['id']}").json()
    assert third["state"] == "queued" and "per user" in third["reason"]
    r = user.api("POST", f"jobs/{jobs[0]['id']}/stop")
    assert r.status_code == 200 and r.json()["state"] == "stopped"
    started = time.monotonic()
    wait_state(user, jobs[2]["id"], {"running", "succeeded"}, timeout=30)
    assert time.monotonic() - started < 10  # no polling delay
    assert user.api("POST", f"jobs/{jobs[0]['id']}/stop").status_code == 409
    user.api("POST", f"jobs/{jobs[1]['id']}/stop")
    # --max-runtime: timed out, output kept.
    timed = submit(user, "q", {"run.py": b"import time\nopen('/floyd/output/partial.txt','w').write('kept')\n"
                                         b"print('working', flush=True)\ntime.sleep(60)\n"},
                   tmp_path, command="python run.py", max_runtime=2)["job"]
    done = wait_state(user, timed["id"], {"timed_out", "failed", "succeeded"}, timeout=60)
    assert done["state"] == "timed_out" and "max runtime" in done["reason"]
    r = user.api("GET", f"jobs/{timed['id']}/output/download", params={"path": "partial.txt"})
    assert r.content == b"kept"


def test_gpu_job_fails_clearly_and_frees_its_gpu(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    user = platform.user("gpujob")
    job = submit(user, "g", SLEEPER, tmp_path, command="python run.py 0", environment="cuda", gpus=1)["job"]
    done = wait_state(user, job["id"], {"failed", "succeeded"}, timeout=60)
    assert done["state"] == "failed" and "no NVIDIA container runtime" in done["reason"]
    assert done["resources"]["gpu_devices"] in (["0"], ["1"])
    leases = {g["device"]: g["holder"] for g in platform.admin.api("GET", "gpus").json()["items"]}
    assert f"job:{job['id']}" not in leases.values()


def test_notebook_job_with_parameters(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("lr = 0.1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell('import json\nprint(json.dumps({"metric": "lr", "value": lr}))')]
    bad = nbformat.v4.new_notebook()
    bad.cells = [nbformat.v4.new_code_cell("print('before')"), nbformat.v4.new_code_cell("1/0")]
    user = platform.user("nbuser")
    files = {"train.ipynb": nbformat.writes(nb).encode(), "broken.ipynb": nbformat.writes(bad).encode()}
    job = submit(user, "nb", files, tmp_path, notebook="train.ipynb", params={"lr": "0.01"})["job"]
    done = wait_state(user, job["id"], {"succeeded", "failed"}, timeout=120)
    assert done["state"] == "succeeded", user.api("GET", f"jobs/{job['id']}/logs").text
    assert done["latest_metrics"]["lr"] == 0.01
    out = user.api("GET", f"jobs/{job['id']}/output/download", params={"path": "train.ipynb"})
    executed = nbformat.reads(out.text, as_version=4)
    assert "injected-parameters" in executed.cells[1].metadata.get("tags", [])
    failing = submit(user, "nb", files, tmp_path, notebook="broken.ipynb")["job"]
    done = wait_state(user, failing["id"], {"succeeded", "failed"}, timeout=120)
    assert done["state"] == "failed"
    assert "ZeroDivisionError" in user.api("GET", f"jobs/{failing['id']}/logs").text


def test_sweep_restart_and_output_as_dataset(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    user = platform.user("sweeper")
    code = {"train.py": b"import json, os\nlr = float(os.environ['FLOYD_PARAM_LR'])\n"
                        b"print(json.dumps({'metric': 'loss', 'value': lr * 2}))\n"
                        b"open('/floyd/output/model.txt', 'w').write(str(lr))\n"}
    result = submit(user, "sw", code, tmp_path, command="python train.py",
                    sweep={"grid": {"lr": [0.1, 0.2, 0.3]}}, concurrency=1)
    group = result["group"]
    assert group["size"] == 3 and [j["params"]["lr"] for j in result["jobs"]] == ["0.1", "0.2", "0.3"]
    for j in result["jobs"]:
        wait_state(user, j["id"], {"succeeded"}, timeout=90)
    listed = user.api("GET", "jobs", params={"group": str(group["id"])}).json()["items"]
    assert sorted(j["latest_metrics"]["loss"] for j in listed) == [0.2, 0.4, 0.6]
    # restart: same snapshot, new params, parent linked.
    first = result["jobs"][0]
    r = user.api("POST", f"jobs/{first['id']}/restart", json={"params": {"lr": "0.5"}})
    assert r.status_code == 201, r.text
    child = r.json()["job"]
    assert child["snapshot"] == first["snapshot"]
    done = wait_state(user, child["id"], {"succeeded"}, timeout=90)
    assert done["parent"] == first["id"] and done["params"]["lr"] == "0.5"
    # The output becomes a dataset version without copying bytes (hardlinks).
    user.api("POST", "datasets", json={"name": "trained"})
    r = user.api("POST", "datasets/sweeper/trained/from-job", json={"job": child["id"]})
    assert r.status_code == 201, r.text
    assert r.json()["ref"] == "sweeper/trained:1"
    job_file = platform.root / "jobs" / "sweeper" / "sw" / str(child["number"]) / "output" / "model.txt"
    version_file = built(platform.root / "datasets" / "sweeper" / "trained" / "1" / "model.txt")
    assert version_file.read_text() == "0.5" and version_file.stat().st_ino == job_file.stat().st_ino
    # A later job mounts that job's output read-only.
    reader = submit(user, "sw", {"read.py": b"print(open('/floyd/input/model/model.txt').read())\n"}, tmp_path,
                    command="python read.py", inputs=[{"source": f"{child['id']}/output", "mount": "model"}])["job"]
    wait_state(user, reader["id"], {"succeeded"}, timeout=60)
    assert "0.5" in user.api("GET", f"jobs/{reader['id']}/logs").text
    assert reader["inputs"][0]["kind"] == "job"
    # A dataset version a job used is kept unless forced.
    user_ds = submit(user, "sw", {"r.py": b"print(open('/floyd/input/t/model.txt').read())\n"}, tmp_path,
                     command="python r.py", inputs=[{"source": "sweeper/trained:1", "mount": "t"}])["job"]
    wait_state(user, user_ds["id"], {"succeeded"}, timeout=60)
    r = user.api("DELETE", "datasets/sweeper/trained/versions/1")
    assert r.status_code == 409 and user_ds["id"] in r.json()["message"] and "force" in r.json()["message"]
    assert user.api("DELETE", "datasets/sweeper/trained/versions/1", params={"force": "1"}).status_code == 200


def test_requirements_are_installed_once_per_hash(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    """floyd_requirements.txt is pip-installed into a cache keyed by its hash: the second job installs nothing."""
    user = platform.user("reqs")
    # A tiny local package, so the test needs no index: pip installs it from the snapshot itself.
    pkg = {"pkg/setup.py": b"from setuptools import setup\nsetup(name='floydtinypkg', version='1.0', py_modules=['floydtinypkg'])\n",
           "pkg/floydtinypkg.py": b"VALUE = 42\n",
           "floyd_requirements.txt": b"./pkg\n",
           "use.py": b"import floydtinypkg\nprint('value', floydtinypkg.VALUE)\n"}
    first = submit(user, "r", pkg, tmp_path, command="python use.py")["job"]
    wait_state(user, first["id"], {"succeeded", "failed"}, timeout=180)
    log1 = user.api("GET", f"jobs/{first['id']}/logs").text
    assert "value 42" in log1 and "installing" in log1, log1
    second = submit(user, "r", pkg, tmp_path, command="python use.py")["job"]
    wait_state(user, second["id"], {"succeeded"}, timeout=120)
    log2 = user.api("GET", f"jobs/{second['id']}/logs").text
    assert "value 42" in log2 and "already installed" in log2
    assert first["requirements_hash"] == second["requirements_hash"] is not None


def test_job_token_reports_metrics_only(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    user = platform.user("tokenjob")
    code = {"report.py": b"import json, os, urllib.request\n"
                         b"req = urllib.request.Request(os.environ['FLOYD_URL'] + 'services/floyd/api/v1/jobs/' + os.environ['FLOYD_JOB'] + '/metrics',"
                         b" data=json.dumps({'metrics': [{'metric': 'acc', 'value': 0.9, 'step': 1}]}).encode(),"
                         b" headers={'Authorization': 'token ' + os.environ['FLOYD_JOB_TOKEN'], 'Content-Type': 'application/json'})\n"
                         b"print(urllib.request.urlopen(req).read().decode())\n"
                         b"req = urllib.request.Request(os.environ['FLOYD_URL'] + 'services/floyd/api/v1/datasets',"
                         b" headers={'Authorization': 'token ' + os.environ['FLOYD_JOB_TOKEN']})\n"
                         b"try:\n    urllib.request.urlopen(req)\nexcept Exception as e:\n    print('refused', e)\n"}
    job = submit(user, "t", code, tmp_path, command="python report.py")["job"]
    done = wait_state(user, job["id"], {"succeeded", "failed"}, timeout=60)
    log = user.api("GET", f"jobs/{job['id']}/logs").text
    assert done["state"] == "succeeded", log
    assert '"accepted": 1' in log and "refused HTTP Error 403" in log
    time.sleep(1)
    assert user.api("GET", f"jobs/{job['id']}/metrics").json()["series"]["acc"][0]["value"] == 0.9


@pytest.fixture(scope="module")
def local_jobs_platform(tmp_path_factory: pytest.TempPathFactory):
    from tests.support.platform import TEST_BRIDGE_CONFIG

    config = TEST_BRIDGE_CONFIG + ("c.JobQueue.max_running = 1\nc.JobQueue.max_running_per_user = 0\n"
                                   "c.JobRunner.stats_interval = 0.5\n")
    p = Platform.create(tmp_path_factory.mktemp("localjobs"), {"FLOYD_JOB_EXECUTOR": "local",
                                                               "FLOYD_SPAWNER": "local"}, config)
    p.start()
    yield p
    p.stop()


def test_local_executor_same_layout(local_jobs_platform: Platform, tmp_path: Path) -> None:
    p = local_jobs_platform
    user = p.user("localjob")
    user.api("POST", "datasets", json={"name": "d"})
    from floyd.client.transfer import upload
    from tests.support.platform import write_tree

    upload(client_for(user), "localjob", "d", write_tree(tmp_path / "d", {"x.txt": b"data!"}))
    code = {"run.py": b"import os\nprint(open(os.path.join(os.environ['FLOYD_INPUT'], 'd', 'x.txt')).read())\n"
                      b"open(os.path.join(os.environ['FLOYD_OUTPUT'], 'o.txt'), 'w').write('out')\n"
                      b"print('cwd-is-code', os.getcwd() == os.environ['FLOYD_CODE'])\n"
                      b"print('hub token leaked', 'JUPYTERHUB_API_TOKEN' in os.environ)\n"}
    job = submit(user, "lp", code, tmp_path, command="python run.py", inputs=[{"source": "d:1"}])["job"]
    done = wait_state(user, job["id"], {"succeeded", "failed"}, timeout=60)
    log = user.api("GET", f"jobs/{job['id']}/logs").text
    assert done["state"] == "succeeded" and done["executor"] == "local", log
    assert "data!" in log and "cwd-is-code True" in log and "hub token leaked False" in log
    assert user.api("GET", f"jobs/{job['id']}/output/download", params={"path": "o.txt"}).content == b"out"


def test_jobs_table_is_in_postgres_too(pg_platform: Platform, postgres) -> None:
    engine = create_engine(postgres.url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 0
    assert pg_platform.admin.api("GET", "jobs").json()["items"] == []


def test_fair_share_and_system_metrics(local_jobs_platform: Platform, tmp_path: Path) -> None:
    """One job at a time on this platform: after ann's first job, bob's goes before ann's second."""
    p = local_jobs_platform
    ann, bob = p.user("ann"), p.user("bob")
    spin = {"spin.py": b"import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"
                       b"print('spun', flush=True)\n"}
    a = [submit(ann, "fair", spin, tmp_path, command="python spin.py 2")["job"] for _ in range(3)]
    b = submit(bob, "fair", spin, tmp_path, command="python spin.py 0.2")["job"]
    for job, user in ((a[0], ann), (a[1], ann), (a[2], ann), (b, bob)):
        wait_state(user, job["id"], {"succeeded"}, timeout=60)
    started = sorted([(ann.api("GET", f"jobs/{j['id']}").json()["started_at"], "ann") for j in a]
                     + [(bob.api("GET", f"jobs/{b['id']}").json()["started_at"], "bob")])
    assert [who for _, who in started] == ["ann", "bob", "ann", "ann"]
    series = ann.api("GET", f"jobs/{a[0]['id']}/metrics").json()["series"]
    assert series["system/cpu_percent"] and max(pt["value"] for pt in series["system/cpu_percent"]) > 20
    assert series["system/memory_bytes"][0]["value"] > 0
