"""Schedules on a real platform of their own: jobs started on a cron time table (a six-field cron
with seconds and a half-second clock, so a test waits seconds), never two at once unless allowed,
pause and resume, bad input refused with nothing stored, and a platform restart that catches up
on the missed due times with one run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.jobs import client_for
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform, User, write_tree

EVERY_2S = "* * * * * */2"
SLOW = {"slow.py": b"import time\nprint('schedules: slow run', flush=True)\ntime.sleep(60)\n"}
QUICK = {"quick.py": b"print('schedules: quick run')\n"}


@pytest.fixture(scope="module")
def sched_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    config = TEST_BRIDGE_CONFIG + "c.ScheduleClock.tick_seconds = 0.5\nc.JobRunner.stats_interval = 0.5\n"
    p = Platform.create(tmp_path_factory.mktemp("schedules"), {"FLOYD_JOB_EXECUTOR": "local",
                                                               "FLOYD_SPAWNER": "local"}, config)
    p.start()
    yield p
    for user in list(p.users.values()):  # jobs outlive the platform: let none run on past the tests
        stop_all(user)
    p.stop()


def linked_dir(user: User, project: str, files: dict[str, bytes], tmp: Path) -> Path:
    root = write_tree(tmp / project, files)
    user.cli("init", project, cwd=root)
    return root


def runs(user: User, name: str) -> list[dict]:
    r = user.api("GET", f"schedules/{user.name}/{name}")
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["runs"]))  # oldest first


def wait_runs(user: User, name: str, ok, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = runs(user, name)
        if ok(seen):
            return seen
        time.sleep(0.3)
    raise AssertionError(f"schedule {name}: {runs(user, name)}\n{user.platform.log_tail(40)}")


def stop_all(user: User) -> None:
    """Stop the user's jobs that still go, and wait until they have ended."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        going = [j for j in user.api("GET", "jobs").json()["items"] if j["state"] in ("queued", "starting", "running")]
        if not going:
            return
        for job in going:
            user.api("POST", f"jobs/{job['id']}/stop")
        time.sleep(0.5)


def test_a_run_never_overlaps_the_previous_one_unless_allowed(sched_platform: Platform, tmp_path: Path) -> None:
    user = sched_platform.user("sched-overlap")
    root = linked_dir(user, "slowp", SLOW, tmp_path)
    out = user.cli("schedule", "create", "slow", "--cron", EVERY_2S, "python slow.py", cwd=root)
    assert "next run" in out.stdout
    seen = wait_runs(user, "slow", lambda rs: [r["outcome"] for r in rs].count("skipped") >= 2)
    started = [r for r in seen if r["outcome"] == "started"]
    assert len(started) == 1 and "still going" in seen[-1]["reason"]
    jobs = user.api("GET", "jobs", params={"project": "sched-overlap/slowp"}).json()["items"]
    assert [j["id"] for j in jobs] == started[0]["jobs"]
    user.cli("schedule", "delete", "slow")
    # Allowed: a second run starts while the first still goes.
    user.cli("schedule", "create", "both", "--cron", EVERY_2S, "--allow-overlap", "python slow.py", cwd=root)
    seen = wait_runs(user, "both", lambda rs: [r["outcome"] for r in rs].count("started") >= 2)
    assert all(r["outcome"] == "started" for r in seen)
    user.cli("schedule", "delete", "both")
    stop_all(user)
    assert user.api("GET", "schedules").json()["items"] == []


def test_pause_and_resume(sched_platform: Platform, tmp_path: Path) -> None:
    user = sched_platform.user("sched-pause")
    root = linked_dir(user, "pausep", QUICK, tmp_path)
    user.cli("schedule", "create", "tick", "--cron", EVERY_2S, "--timezone", "Europe/Berlin", "python quick.py",
             cwd=root)
    wait_runs(user, "tick", lambda rs: any(r["outcome"] == "started" for r in rs))
    assert "Paused" in user.cli("schedule", "pause", "tick").stdout
    listed = user.cli("schedule", "list").stdout
    assert "sched-pause/tick" in listed and "paused" in listed and "Europe/Berlin" in listed
    before = runs(user, "tick")
    time.sleep(4)  # two due times and eight ticks of the clock
    assert runs(user, "tick") == before
    assert user.api("GET", "schedules/sched-pause/tick").json()["next_run_at"] is None
    assert "Resumed" in user.cli("schedule", "resume", "tick").stdout
    wait_runs(user, "tick", lambda rs: len(rs) > len(before))
    shown = user.cli("schedule", "show", "tick").stdout
    assert "started" in shown and "sched-pause/pausep/" in shown
    user.cli("schedule", "delete", "tick")


def test_bad_input_is_refused_and_stores_nothing(sched_platform: Platform, tmp_path: Path) -> None:
    user = sched_platform.user("sched-bad")
    root = linked_dir(user, "badp", QUICK, tmp_path)
    client = client_for(user)
    from floyd.client.transfer import upload_code

    snapshot = upload_code(client, "sched-bad", "badp", root).version["id"]
    request = {"project": "sched-bad/badp", "snapshot": snapshot, "command": "python quick.py"}
    good = {"name": "ok", "cron": "0 3 * * *", "target": {"kind": "job", "request": request}}
    cases = [
        ({**good, "cron": "61 * * * *"}, 400, "Invalid cron"),
        ({**good, "cron": "every day"}, 400, "Invalid cron"),
        ({**good, "cron": "* * * * * * *"}, 400, "Invalid cron"),
        ({**good, "name": "n" * 4096}, 400, "Invalid schedule name"),
        ({**good, "timezone": "Mars/Olympus"}, 400, "Unknown time zone"),
        ({**good, "timezone": "../../etc/passwd"}, 400, "Invalid time zone"),
        ({**good, "allow_overlap": "no"}, 400, "true or false"),
        ({**good, "target": {"kind": "notebook", "request": request}}, 400, "Unknown target kind"),
        ({**good, "target": {"kind": "pipeline", "request": request}}, 400, "Unknown field"),
        ({**good, "target": {"kind": "job", "request": {**request, "snapshot": None}}}, 400, "snapshot"),
        ({**good, "target": {"kind": "job", "request": {**request, "project": "sched-other/x"}}}, 404, "not found"),
        ({**good, "target": {"kind": "job", "request": {**request, "environment": "nope"}}}, 422, "nope"),
        ({**good, "when": "later"}, 400, "Unknown field"),
    ]
    for body, status, words in cases:
        r = user.api("POST", "schedules", json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert words in r.json()["message"], r.text
        assert len(r.text) < 2000  # a 4 KB name is not echoed back whole
    assert user.api("GET", "schedules").json()["items"] == []
    # The CLI: a bad cron or a 4 KB name is one line and exit code 4, before any upload.
    for args in (["nightly", "--cron", "61 * * * *"], ["n" * 4096, "--cron", "0 3 * * *"],
                 ["nightly", "--cron", "0 3 * * *", "--timezone", "Nowhere/Land"]):
        proc = user.cli("schedule", "create", *args, "python quick.py", cwd=root, check=False)
        assert proc.returncode == 4, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert user.api("GET", "schedules").json()["items"] == []
    assert "No schedules yet" in user.cli("schedule", "list").stdout
    # Someone else's schedule is not found, whatever they try.
    user.api("POST", "schedules", json=good)
    other = sched_platform.user("sched-intruder")
    for method in ("GET", "PATCH", "DELETE"):
        r = other.api(method, "schedules/sched-bad/ok", json={} if method == "PATCH" else None)
        assert r.status_code == 404, r.text
    assert other.api("GET", "schedules").json()["items"] == []
    assert user.api("PATCH", "schedules/sched-bad/ok", json={"cron": "bad"}).status_code == 400
    assert user.api("GET", "schedules/sched-bad/ok").json()["cron"] == "0 3 * * *"
    assert user.api("DELETE", "schedules/sched-bad/ok").status_code == 204


def test_a_restart_catches_up_once(sched_platform: Platform, tmp_path: Path) -> None:
    user = sched_platform.user("sched-restart")
    root = linked_dir(user, "restartp", QUICK, tmp_path)
    # Overlap allowed: the job running at the stop may still read as running when the bridge is back.
    user.cli("schedule", "create", "often", "--cron", EVERY_2S, "--allow-overlap", "python quick.py", cwd=root)
    wait_runs(user, "often", lambda rs: any(r["outcome"] == "started" for r in rs))
    sched_platform.stop()
    stopped = datetime.now().astimezone()
    time.sleep(6)  # three due times or more pass while nothing runs
    sched_platform.start()
    after = wait_runs(user, "often", lambda rs: any(datetime.fromisoformat(r["fired_at"]) > stopped for r in rs))
    first = next(r for r in after if datetime.fromisoformat(r["fired_at"]) > stopped)
    assert first["missed"] >= 2, first  # the missed due times, caught up with one run
    assert first["outcome"] == "started" and len(first["jobs"]) == 1
    # Not one run per missed due time: every later run is for a due time after the catch-up's.
    replayed = [r for r in after if datetime.fromisoformat(r["fired_at"]) > stopped and
                datetime.fromisoformat(r["due_at"]) <= datetime.fromisoformat(first["due_at"])]
    assert replayed == [first]
    assert user.api("GET", "schedules/sched-restart/often").json()["cron"] == EVERY_2S  # kept across the restart
    user.cli("schedule", "delete", "often")
