"""Paths with invalid percent escapes, sent raw through the public port: 400, never CHP's 500.

``requests`` re-quotes paths, so these go out through http.client and a bare socket.
"""

from __future__ import annotations

import http.client
import socket

import pytest

from tests.support.platform import Platform

MALFORMED = [
    "/hub/%ff%fe", "/%c0%ae", "/services/floyd/%ff", "/services/floyd/api/v1/datasets/%c0%ae%c0%ae/x",
    "/hub/api/users/%ff/tokens", "/user/alice/%ff", "/hub/%zz", "/%", "/services/floyd/endpoints/a/b/%e2%82",
]
# Odd but decodable: whatever the hub or the bridge answers, it is not a server error.
DECODABLE = [
    "/hub/%00", "/services/floyd/%00", "/services/floyd/api/v1/datasets/a%00b", "/user/%00/",
    "/hub/api/users/%00", "/services/floyd/endpoints/%00/x", "/hub/login?next=%ff",
    "/services/floyd/api/v1/info?x=%ff", "/%2e%2e/%2e%2e/etc/passwd", "/services/floyd/jobs/%00/%00/1",
]


def raw_request(platform: Platform, method: str, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", platform.hub_port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Content-Length", "0")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_invalid_escapes_are_a_bad_request(platform: Platform, method: str) -> None:
    for path in MALFORMED:
        status, body = raw_request(platform, method, path)
        assert status == 400, (path, status, body[:300])
        assert b"URIError" not in body


def test_bad_request_page_is_the_hubs(platform: Platform) -> None:
    status, body = raw_request(platform, "GET", "/hub/%ff%fe")
    assert status == 400 and b"<html" in body.lower() and b"400" in body


def test_websocket_upgrade_with_invalid_escape(platform: Platform) -> None:
    with socket.create_connection(("127.0.0.1", platform.hub_port), timeout=30) as s:
        s.sendall(b"GET /user/alice/%ff/api/kernels/x/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        assert s.recv(200).split(b"\r\n")[0] == b"HTTP/1.1 400"


def test_decodable_odd_paths_are_no_server_error(platform: Platform) -> None:
    for path in DECODABLE:
        status, body = raw_request(platform, "GET", path)
        assert status < 500, (path, status, body[:300])
