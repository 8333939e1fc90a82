"""Live log streams (server-sent events) are capped: per user (2 here) and in all (3 here);
one more answers 429 with Retry-After, and a stream closed by its client frees its place."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.jobs import submit, wait_state
from tests.support.platform import User

SLEEPER = {"run.py": b"import time\nprint('up', flush=True)\ntime.sleep(300)\n"}


def running_job(user: User, tmp: Path) -> str:
    job = submit(user, "followed", SLEEPER, tmp, command="python run.py")["job"]["id"]
    wait_state(user, job, {"running"})
    deadline = time.monotonic() + 60
    while "up" not in user.api("GET", f"jobs/{job}/logs").text:  # a line to send: the stream's head goes out
        assert time.monotonic() < deadline, user.platform.log_tail(40)
        time.sleep(0.2)
    return job


def follow(user: User, job: str) -> requests.Response:
    return requests.get(f"{user.platform.api_url}jobs/{job}/logs", params={"follow": "1"}, headers=user.headers,
                        stream=True, timeout=30)


def assert_refused(r: requests.Response, *words: str) -> None:
    assert r.status_code == 429, r.status_code
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    body = r.json()
    assert body["status"] == 429 and all(w in body["message"] for w in words), body["message"]


def test_followers_are_capped_per_user_and_in_all(alice: User, bob: User, tmp_path: Path) -> None:
    mine, theirs = running_job(alice, tmp_path), running_job(bob, tmp_path)
    streams = [follow(alice, mine), follow(alice, mine)]
    try:
        assert all(s.status_code == 200 for s in streams)
        assert_refused(follow(alice, mine), "alice already follows 2", "close one")
        streams.append(follow(bob, theirs))
        assert streams[-1].status_code == 200
        assert_refused(follow(bob, theirs), "already serves 3")
        # Reading the log without following it is not limited.
        assert alice.api("GET", f"jobs/{mine}/logs").status_code == 200
        streams.pop(0).close()  # alice closes one: her place, and the bridge's, come free
        deadline = time.monotonic() + 30
        while (again := follow(alice, mine)).status_code == 429:
            assert time.monotonic() < deadline, "a closed stream kept its place"
            time.sleep(0.5)
        streams.append(again)
        assert again.status_code == 200
    finally:
        for s in streams:
            s.close()
        alice.api("POST", f"jobs/{mine}/stop")
        bob.api("POST", f"jobs/{theirs}/stop")
