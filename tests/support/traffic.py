"""Continuous traffic to an endpoint from a thread, with every answer's time and status kept, so
a fault test can say exactly when requests failed and who answered before and after."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import requests

from tests.support.platform import User
from tests.support.serving import endpoint_url


@dataclass(frozen=True)
class Answer:
    started: float  # time.monotonic() when the request was sent
    ended: float
    status: int | str  # the HTTP status, or the exception's class name when none came
    body: str


class Traffic:
    """GET ``path`` of an endpoint as its owner, one request after another (``pause`` between),
    until ``stop()``. Keep-alive as a real client would: a dead connection is dropped, not retried."""

    def __init__(self, user: User, name: str, path: str, pause: float = 0.05) -> None:
        self.url = endpoint_url(user, name) + path.lstrip("/")
        self.headers = dict(user.headers)
        self.pause = pause
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"traffic-{name}", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = session.get(self.url, headers=self.headers, timeout=10)
                    status: int | str = r.status_code
                    body = r.text[:200]
                except requests.RequestException as exc:
                    status, body = type(exc).__name__, str(exc)[:200]
                self.answers.append(Answer(t0, time.monotonic(), status, body))
                self._stop.wait(self.pause)

    def counts(self) -> Counter[int | str]:
        return Counter(a.status for a in self.answers)

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def first_ok_after(self, t: float) -> Answer | None:
        """The first 200 to a request sent after ``t``."""
        return next((a for a in self.answers if a.started > t and a.status == 200), None)

    def wait_ok_after(self, t: float, timeout: float) -> Answer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (ok := self.first_ok_after(t)) is not None:
                return ok
            time.sleep(0.2)
        raise AssertionError(f"no 200 from {self.url} within {timeout}s; answers since: "
                             f"{Counter(a.status for a in self.answers if a.started > t)}")
