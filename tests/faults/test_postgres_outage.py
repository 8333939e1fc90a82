"""PostgreSQL stops for a few seconds while a few clients keep calling the API.

Promised (docs/admin.md, "Failure modes"): while the database is down every request answers
503 with a JSON message within a bounded time (no 500, no hang); once it is back requests
succeed again within seconds, without restarting anything; nothing acknowledged is lost.

The server is this test's own, not the session's ``postgres`` fixture: stopping that one would
pull the database from under ``pg_platform`` and whichever test uses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.platform import Platform, User
from tests.support.postgres import PostgresServer

CLIENTS = 4
DOWN_FOR = 5.0  # seconds the database is stopped
HANG = 30  # no request may take longer than this
RECOVERY = 20.0  # seconds after the restart within which requests must succeed again


@dataclass
class Outcome:
    at: float  # when the answer came (monotonic)
    op: str
    status: int  # 0: no answer within HANG, or the connection broke
    body: object
    project: str = ""


@pytest.fixture
def pg_outage_platform(tmp_path: Path) -> Iterator[tuple[Platform, PostgresServer]]:
    server = PostgresServer()
    p: Platform | None = None
    try:
        server.start()
        p = Platform.create(tmp_path, {"FLOYD_DB_URL": server.url})
        p.start()
        yield p, server
    finally:
        if p is not None:
            p.stop()
        server.stop()


class Clients:
    """A few threads calling the API in a loop, recording every answer."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(CLIENTS)]

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for t in self.threads:
            t.join(HANG + 5)

    def _loop(self, n: int) -> None:
        i = 0
        while not self.done.is_set():
            i += 1
            op, kwargs, project = [
                ("GET datasets", {}, ""), ("GET jobs", {}, ""),
                ("POST projects", {"json": {"name": f"load-{n}-{i}"}}, f"load-{n}-{i}"),
            ][i % 3]
            method, path = op.split()
            try:
                r = self.user.api(method, path, timeout=HANG, **kwargs)
                status, body = r.status_code, parse(r)
            except requests.RequestException as exc:
                status, body = 0, repr(exc)
            with self.lock:
                self.outcomes.append(Outcome(time.monotonic(), op, status, body, project))
            time.sleep(0.05)

    def since(self, t: float) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if o.at >= t]


def parse(r: requests.Response) -> object:
    try:
        return r.json()
    except ValueError:
        return r.text


def test_postgres_stopped_and_started_under_load(pg_outage_platform: tuple[Platform, PostgresServer]) -> None:
    platform, server = pg_outage_platform
    alice = platform.user("alice")
    with Clients(alice) as clients:
        time.sleep(2)
        server.halt()
        down_at = time.monotonic()
        time.sleep(DOWN_FOR)
        server.resume()
        up_at = time.monotonic()
        healthy = False
        while not healthy and time.monotonic() < up_at + RECOVERY:
            time.sleep(0.5)
            recent = clients.since(max(up_at, time.monotonic() - 2))  # a 2 s stretch of calls all succeeded
            healthy = len(recent) >= 3 * CLIENTS and all(o.status in (200, 201) for o in recent)
    outcomes = clients.outcomes
    assert [o for o in outcomes if o.status == 0] == [], "a request hung or its connection broke"
    assert [o for o in outcomes if o.status not in (200, 201, 503)] == []
    unavailable = [o for o in outcomes if o.status == 503]
    assert unavailable, "no request noticed the database was down"
    for o in unavailable:
        assert isinstance(o.body, dict) and o.body["status"] == 503 and "database" in o.body["message"], o
        assert down_at - 1 <= o.at <= up_at + RECOVERY, o  # only while it was down, or just after
    assert healthy, f"requests did not succeed again within {RECOVERY} s of the restart"
    documented = platform.api("GET", "openapi.json").json()["paths"]
    for path, method in [("/api/v1/datasets", "get"), ("/api/v1/jobs", "get"), ("/api/v1/projects", "post")]:
        assert "503" in documented[path][method]["responses"], (path, method)
    acknowledged = {o.project for o in outcomes if o.op == "POST projects" and o.status == 201}
    listed = {p["name"] for p in alice.api("GET", "projects").json()["items"]}
    assert acknowledged and acknowledged <= listed, acknowledged - listed
