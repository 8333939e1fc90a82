"""Issue 17, point 2: what schemathesis found where the server, not the document, was wrong
(tests/fuzz/test_schemathesis.py runs the fuzzer; these pin each fix down on its own)."""

from __future__ import annotations

import socket

import pytest

from tests.support.platform import Platform, User


@pytest.mark.parametrize("path", ["datasets?public=yes", "datasets?public=", "datasets?owner=",
                                  "projects?owner=", "workspaces/options?admin=AAA", "workspaces/options?user=",
                                  "endpoints/alice/x/metrics?minutes=0", "endpoints/alice/x/metrics?minutes=nan",
                                  "endpoints/alice/x/metrics?minutes=10081"])
def test_query_arguments_outside_the_document_are_400(alice: User, path: str) -> None:
    """Query flags are 1/0/true/false ("yes" once meant no), an empty owner is no owner, minutes
    run from 1 to a week (they were silently clamped)."""
    r = alice.api("GET", path)
    assert r.status_code == 400, (path, r.text)


def test_query_flags_still_read_1_and_true(alice: User) -> None:
    assert alice.api("GET", "datasets?public=1").status_code == 200
    assert alice.api("GET", "datasets?public=true").status_code == 200
    assert alice.api("GET", "datasets?public=0").status_code == 200


@pytest.mark.parametrize("path", ["datasets/alice/x/diff", "jobs?limit=0", "datasets?public=yes"])
def test_no_token_is_401_before_any_argument_is_judged(platform: Platform, path: str) -> None:
    r = platform.api("GET", path)
    assert r.status_code == 401, r.text


def test_bodies_keep_their_bounds(alice: User, bob: User) -> None:
    alice.api("POST", "datasets", json={"name": "bounds"})
    r = alice.api("PATCH", "datasets/alice/bounds", json={"description": "x" * 10_001})
    assert r.status_code == 400 and "10,000" in r.json()["message"]
    r = alice.api("POST", "endpoints", json={"name": "bounds", "owner": bob.name})
    assert r.status_code == 403, r.text  # someone else's: may not, not malformed
    r = alice.api("POST", "endpoints", json={"name": "bounds", "owner": ""})
    assert r.status_code == 400, r.text  # an empty owner is an invalid name, not "myself"
    assert alice.api("POST", "endpoints", json={"name": "bounds"}).status_code == 201
    for bad in ("", False, -1, 3651):
        r = alice.api("POST", "endpoints/alice/bounds/keys", json={"expires_in_days": bad})
        assert r.status_code == 400, (bad, r.text)
    r = alice.api("POST", "endpoints/alice/bounds/keys", json={"name": ""})
    assert r.status_code == 400, r.text
    r = alice.api("POST", "endpoints/alice/bounds/keys", json={"name": None, "expires_in_days": None})
    assert r.status_code == 201 and r.json()["name"] == "default"
    r = alice.api("POST", "workspaces/release", json={"server_name": "../x"})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("name", ["ok\n", "a..b", "x" * 65])
def test_names_are_matched_whole(alice: User, name: str) -> None:
    """A name is matched to its end ('ok\\n' passed re.match with '$'), without '..', at most 64."""
    r = alice.api("POST", "projects", json={"name": name})
    assert r.status_code == 400, r.text


def test_an_early_answer_on_an_upload_route_leaves_the_next_request_whole(platform: Platform) -> None:
    """A method tornado does not know (TRACE) is refused before the body is read, and tornado then
    closes its connection; what stands in front (HAProxy on the bridge's port, configurable-http-proxy
    on the public one) must not send the next request down that closed socket (it answered 503)."""
    for port in (platform.bridge_port, platform.hub_port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"TRACE /services/floyd/api/v1/uploads/0/pack HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 4\r\n\r\nnull")
            head = sock.recv(65536).split(b"\r\n\r\n", 1)[0].decode().lower()
            assert head.startswith("http/1.1 405"), head
            try:
                sock.sendall(b"GET /services/floyd/api/v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
                second = sock.recv(65536).decode().lower()
            except ConnectionError:
                second = ""
            # answered, or the connection said it was closing: never a 503 from a stale socket
            assert second.startswith("http/1.1 200") or (second == "" and "connection: close" in head), second
