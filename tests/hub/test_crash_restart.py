"""A crash of the hub (kill -9 of floyd-up's process group) and the next start on the same root.

JupyterHub starts the proxy, the bridge and the idle culler in sessions of their own, so such a
crash does not reach them: they must die with the hub, and whatever still runs (a process that
could not act on its death signal) is stopped by the next start. The next start comes back whole.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.jobs import submit, wait_state
from tests.support.platform import Platform
from tests.support.processes import kill_all, of_root, tree_roles, wait_dead

WAIT_FOR_FLAG = b"""import os, sys, time
print('waiting', flush=True)
deadline = time.time() + 300
while not os.path.exists(sys.argv[1]) and time.time() < deadline:
    time.sleep(0.2)
print('flag seen', flush=True)
"""


def crash(p: Platform) -> dict[int, str]:
    """kill -9 of floyd-up's process group (floyd-up and JupyterHub); returns the platform's
    processes as they were just before."""
    before = tree_roles(p.proc.pid)
    assert sorted(before.values()) == ["bridge", "culler", "floyd-up", "hub", "proxy"], before
    os.killpg(p.proc.pid, signal.SIGKILL)
    p.proc.wait(10)
    return before


def assert_whole(p: Platform, before: dict[int, str]) -> None:
    """The new platform: its bridge answers, one bridge and one culler work in its root, all new."""
    p.wait_bridge(60)
    now = tree_roles(p.proc.pid)
    assert sorted(now.values()) == ["bridge", "culler", "floyd-up", "hub", "proxy"], now
    assert not set(now) & set(before), (before, now)
    in_root = of_root(p.root)
    assert sorted(r for r in in_root.values() if r in ("bridge", "culler")) == ["bridge", "culler"], in_root
    assert not {pid for pid in before if pid in in_root}, (before, in_root)


def test_services_die_with_the_hub_and_restart_takes_jobs_back(tmp_path: Path) -> None:
    p = Platform.create(tmp_path, {"FLOYD_JOB_EXECUTOR": "local", "FLOYD_SPAWNER": "local"})
    p.start()
    before: dict[int, str] = {}
    try:
        user = p.user("crashy")
        flag = tmp_path / "flag"
        job = submit(user, "crash", {"run.py": WAIT_FOR_FLAG}, tmp_path, command=f"python run.py {flag}")["job"]
        wait_state(user, job["id"], {"running"}, timeout=60)
        before = crash(p)
        left = wait_dead(set(before), 15)
        assert not left, f"outlived the hub: {[before[pid] for pid in left]}"

        p.start()
        assert_whole(p, before)
        user = p.user("crashy")
        assert user.api("GET", f"jobs/{job['id']}").json()["state"] == "running"
        flag.touch()
        done = wait_state(user, job["id"], {"succeeded", "failed"}, timeout=60)
        log = user.api("GET", f"jobs/{job['id']}/logs").text
        assert done["state"] == "succeeded" and "waiting" in log and "flag seen" in log, log

        # kill -9 of the launcher alone: JupyterHub gets SIGTERM and stops the platform cleanly.
        before = tree_roles(p.proc.pid)
        p.proc.kill()
        left = wait_dead(set(before), 30)
        assert not left, f"outlived floyd-up: {[before[pid] for pid in left]}"
    finally:
        p.stop()
        kill_all(set(before))


def test_next_start_stops_services_left_running(tmp_path: Path) -> None:
    """A bridge and a culler that cannot act on their death signal (stopped) outlive the crash;
    the next start finds them by their pid files and stops them before starting its own."""
    p = Platform.create(tmp_path)
    p.start()
    before: dict[int, str] = {}
    try:
        stuck = {pid for pid, r in tree_roles(p.proc.pid).items() if r in ("bridge", "culler")}
        for pid in stuck:
            os.kill(pid, signal.SIGSTOP)
        before = crash(p)
        proxy = {pid for pid, r in before.items() if r == "proxy"}
        kill_all(proxy)  # every process of the platform but the stuck ones is gone
        assert not wait_dead(set(before) - stuck, 15)
        assert wait_dead(stuck, 2) == stuck

        p.start()
        assert_whole(p, before)
        assert not wait_dead(stuck, 0)
        assert p.log_tail(400).count("left running by a previous start") == 2
    finally:
        p.stop()
        kill_all(set(before))
