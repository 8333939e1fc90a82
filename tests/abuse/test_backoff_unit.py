"""The back-off's arithmetic with a fake clock: thresholds, doubling, cap, reset, expiry, bound."""

from __future__ import annotations

from tornado.httputil import HTTPHeaders
from traitlets.config import Config

from jobs_bridge.auth.backoff import Backoff, client_ip


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: FakeClock, **traits: object) -> Backoff:
    settings = {"max_failures": 3, "window": 60.0, "base_delay": 2.0, "max_delay": 20.0, **traits}
    return Backoff(clock=clock, config=Config({"Backoff": settings}))


def test_locks_after_max_failures_and_doubles_up_to_the_cap() -> None:
    clock = FakeClock()
    b = make(clock)
    b.failed("ip:1")
    b.failed("ip:1")
    assert b.retry_after("ip:1") == 0
    b.failed("ip:1")
    assert b.retry_after("ip:1") == 2
    waits = []
    for _ in range(6):
        clock.now += b.retry_after("ip:1")  # the lock-out has passed; the next attempt fails again
        assert b.retry_after("ip:1") == 0
        b.failed("ip:1")
        waits.append(b.retry_after("ip:1"))
    assert waits == [4, 8, 16, 20, 20, 20]
    assert b.retry_after("other") == 0
    assert b.retry_after("other", "ip:1") == 20


def test_success_resets_and_quiet_keys_expire() -> None:
    clock = FakeClock()
    b = make(clock)
    b.failed("user:a")
    b.failed("user:a")
    b.succeeded("user:a")
    b.failed("user:a")
    b.failed("user:a")
    assert b.retry_after("user:a") == 0  # two after the reset, not four
    clock.now += 61  # a window without failures: counting starts over
    b.failed("user:a")
    assert b.retry_after("user:a") == 0 and len(b) == 1
    b.failed("user:b")
    clock.now += 61
    b.failed("user:c")  # each failure drops what has expired
    assert len(b) == 1


def test_a_lockout_outlives_the_window() -> None:
    clock = FakeClock()
    b = make(clock, window=5.0, base_delay=30.0, max_delay=30.0)
    for _ in range(3):
        b.failed("k")
    clock.now += 10
    b.failed("other")
    assert b.retry_after("k") == 20


def test_memory_is_bounded() -> None:
    clock = FakeClock()
    b = make(clock, max_keys=50)
    for i in range(1000):
        b.failed(f"ip:{i}")
    assert len(b) == 50
    # The most recently failed are kept: a victim's key, still failing, is never the one dropped.
    for i in range(1000):
        b.failed(f"spray:{i}")
        if i % 10 == 0:
            b.failed("user:victim")
    assert b.retry_after("user:victim") > 0


def test_off_when_max_failures_is_zero() -> None:
    b = make(FakeClock(), max_failures=0)
    for _ in range(100):
        b.failed("k")
    assert b.retry_after("k") == 0 and len(b) == 0


def test_client_ip_is_the_proxys_entry() -> None:
    spoofed = HTTPHeaders({"X-Forwarded-For": "6.6.6.6, 10.0.0.7", "X-Real-Ip": "7.7.7.7"})
    assert client_ip(spoofed, "127.0.0.1") == "10.0.0.7"
    assert client_ip(spoofed, "127.0.0.1", hops=2) == "6.6.6.6"
    assert client_ip(spoofed, "127.0.0.1", hops=5) == "6.6.6.6"
    assert client_ip(HTTPHeaders(), "192.0.2.1") == "192.0.2.1"
    two = HTTPHeaders()
    two.add("X-Forwarded-For", "1.1.1.1")
    two.add("X-Forwarded-For", "2.2.2.2")
    assert client_ip(two, "127.0.0.1") == "2.2.2.2"
