"""Wrong endpoint API keys are slowed: per client address and per endpoint, 429 + Retry-After
before the key is checked (the bridge's EndpointGate).

The bridge's own port is called directly with X-Forwarded-For, as configurable-http-proxy calls
it, to give each test addresses of its own; the last test goes through the proxy.
"""

from __future__ import annotations

import requests

from tests.support.platform import Platform, User


def endpoint_with_key(user: User, name: str) -> str:
    """A private endpoint (no version: a request that passes the gate gets 503) and one key."""
    assert user.api("POST", "endpoints", json={"name": name}).status_code == 201
    r = user.api("POST", f"endpoints/{user.name}/{name}/keys", json={"name": "k"})
    assert r.status_code == 201, r.text
    return r.json()["key"]


def call(base: str, user: User, name: str, key: str, address: str | None = None,
         extra: dict[str, str] | None = None) -> requests.Response:
    headers = {"X-Floyd-Key": key, **(extra or {})}
    if address:
        headers["X-Forwarded-For"] = address
    return requests.get(f"{base}services/floyd/endpoints/{user.name}/{name}/predict", headers=headers, timeout=30)


def direct(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.bridge_port}/"


def assert_locked(r: requests.Response) -> str:
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    body = r.json()
    assert body["status"] == 429 and "try again in" in body["message"]
    return body["message"]


def test_per_address_backoff(platform: Platform, alice: User) -> None:
    key = endpoint_with_key(alice, "keys-addr")
    base = direct(platform)
    for _ in range(3):
        assert call(base, alice, "keys-addr", "fk_wrong", "10.1.0.1").status_code == 401
    # Locked: the right key is not even looked at.
    assert "your address 10.1.0.1" in assert_locked(call(base, alice, "keys-addr", key, "10.1.0.1"))
    # Another address with the right key passes the gate (503: no version deployed yet).
    assert call(base, alice, "keys-addr", key, "10.1.0.2").status_code == 503


def test_per_endpoint_backoff(platform: Platform, alice: User) -> None:
    key = endpoint_with_key(alice, "keys-ep")
    other = endpoint_with_key(alice, "keys-other")
    base = direct(platform)
    for i in range(5):  # one failure each from five addresses: no address reaches its limit
        assert call(base, alice, "keys-ep", "fk_wrong", f"10.2.0.{i}").status_code == 401
    message = assert_locked(call(base, alice, "keys-ep", key, "10.2.0.99"))
    assert "alice/keys-ep" in message
    assert call(base, alice, "keys-other", other, "10.2.0.99").status_code == 503


def test_a_client_cannot_choose_its_address(platform: Platform, alice: User) -> None:
    endpoint_with_key(alice, "keys-spoof")
    for i in range(3):
        spoof = {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-Ip": f"198.51.100.{i}"}
        assert call(platform.url, alice, "keys-spoof", "fk_wrong", extra=spoof).status_code == 401
    r = call(platform.url, alice, "keys-spoof", "fk_wrong", extra={"X-Forwarded-For": "203.0.113.99",
                                                                   "X-Real-Ip": "198.51.100.99"})
    message = assert_locked(r)
    assert "203.0.113" not in message and "198.51.100" not in message
