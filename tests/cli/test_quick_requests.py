"""JSON requests over the standard library (``client/quick.py``) against a real local HTTP server:
what requests would have sent and answered, without importing it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from floyd.client.errors import ConnectionFailed, FloydAPIError
from floyd.client.http import FloydClient


class Recorder(BaseHTTPRequestHandler):
    """Answers by path: ``/…/echo`` the request as JSON, ``/…/empty`` nothing, ``/…/refuse`` a 409
    with the bridge's error body, ``/…/moved`` a redirect to echo."""

    seen: list[dict] = []

    def _answer(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if size else b""
        self.seen.append({"method": self.command, "path": self.path, "body": body,
                          "type": self.headers.get("Content-Type"), "auth": self.headers.get("Authorization")})
        if self.path.endswith("/empty"):
            self.send_response(204)
            self.end_headers()
            return
        if "/moved" in self.path:
            self.send_response(307)
            self.send_header("Location", self.path.replace("/moved", "/echo"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, answer = (409, {"status": 409, "message": "That name is taken."}) if self.path.endswith("/refuse") \
            else (200, {"method": self.command, "path": self.path, "body": json.loads(body) if body else None})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def client() -> Iterator[FloydClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    try:
        yield FloydClient(f"http://127.0.0.1:{server.server_address[1]}", "tok")
    finally:
        server.shutdown()
        server.server_close()


def test_bodies_and_queries_go_as_requests_would_send_them(client: FloydClient) -> None:
    answer = client.send_json("POST", "things/echo", {"name": "x", "n": 2}, force="1", skip=None)
    assert answer == {"method": "POST", "path": "/services/floyd/api/v1/things/echo?force=1",
                      "body": {"name": "x", "n": 2}}
    [seen] = Recorder.seen
    assert seen["type"] == "application/json" and seen["auth"] == "token tok"
    assert client.send_json("POST", "things/echo")["body"] is None  # no body: Content-Length 0
    assert Recorder.seen[-1]["body"] == b""
    assert client.send_json("DELETE", "things/empty") is None
    assert client.get_json("things/echo", owner="a", public=False)["path"].endswith("/things/echo?owner=a")
    assert client._session is None  # requests was never needed


def test_errors_read_the_bridge_message(client: FloydClient) -> None:
    with pytest.raises(FloydAPIError) as refused:
        client.send_json("PUT", "things/refuse", {"a": 1})
    assert refused.value.status == 409 and refused.value.message == "That name is taken."
    with pytest.raises(ValueError):  # as requests refuses NaN, nothing is sent
        client.send_json("POST", "things/echo", {"x": float("nan")})
    assert [s["path"] for s in Recorder.seen] == ["/services/floyd/api/v1/things/refuse"]


def test_a_redirect_goes_through_requests(client: FloydClient) -> None:
    answer = client.send_json("POST", "things/moved", {"k": "v"})
    assert answer["path"] == "/services/floyd/api/v1/things/echo" and answer["body"] == {"k": "v"}
    assert client._session is not None


def test_an_unreachable_platform_says_so() -> None:
    with pytest.raises(ConnectionFailed, match="Cannot reach the platform"):
        FloydClient("http://127.0.0.1:9", "tok", timeout=5).send_json("POST", "x", {"a": 1})
