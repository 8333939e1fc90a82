"""Size limits of requests, each answered with its status and a message a person can act on:
JSON bodies and endpoint bodies (413), upload bodies (413), manifests (413), query strings
(400) and names (400). The platform's limits are small (conftest.py), so each is reached fast.
"""

from __future__ import annotations

import hashlib
import json

import requests

from tests.support.platform import Platform, User

JSON_LIMIT = 64 * 1024


def assert_error(r: requests.Response, status: int, *words: str) -> str:
    assert r.status_code == status, (r.status_code, r.text[:500])
    body = r.json()
    assert body["status"] == status
    for word in words:
        assert word in body["message"], body["message"]
    assert len(body["message"]) < 400  # never an echo of the oversized input
    return body["message"]


def test_json_body_over_the_limit_is_413(alice: User) -> None:
    big = json.dumps({"name": "p", "description": "x" * (JSON_LIMIT + 10)})
    r = alice.api("POST", "projects", data=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413, str(JSON_LIMIT), "floyd data upload")
    # Chunked, with no Content-Length: counted as it arrives.
    chunks = (big[i:i + 8192].encode() for i in range(0, len(big), 8192))
    assert_error(alice.api("POST", "projects", data=chunks), 413, str(JSON_LIMIT))
    # The connection and the bridge are fine afterwards, and a body under the limit is served.
    assert alice.api("POST", "projects", json={"name": "small-body"}).status_code == 201


def test_endpoint_body_over_the_limit_is_413(platform: Platform, alice: User) -> None:
    assert alice.api("POST", "endpoints", json={"name": "big-body"}).status_code == 201
    url = f"{platform.url}services/floyd/endpoints/alice/big-body/predict"
    r = requests.post(url, data=b"x" * (JSON_LIMIT + 1), headers={"X-Floyd-Key": "fk_x"}, timeout=30)
    assert_error(r, 413, str(JSON_LIMIT))


def test_upload_body_over_the_limit_is_413(alice: User) -> None:
    assert alice.api("POST", "datasets", json={"name": "big-blob"}).status_code == 201
    data = b"y" * (300 * 1024)  # over the platform's 256 KiB per request
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = alice.api("POST", "datasets/alice/big-blob/uploads",
                  json={"manifest": [{"path": "a.bin", "size": len(data), "hash": digest}]})
    assert r.status_code == 201, r.text
    upload = r.json()["id"]
    r = alice.api("PUT", f"uploads/{upload}/blobs/{digest}", data=data, headers={"Upload-Offset": "0"})
    assert_error(r, 413, str(256 * 1024), "parts")
    chunked = (data[i:i + 65536] for i in range(0, len(data), 65536))  # no Content-Length: counted
    r = alice.api("PUT", f"uploads/{upload}/blobs/{digest}", data=chunked, headers={"Upload-Offset": "0"})
    assert_error(r, 413, str(256 * 1024), "parts")
    assert alice.api("GET", f"uploads/{upload}").status_code == 200  # the upload itself goes on


def manifest(count: int, pad: int = 0) -> list[dict]:
    entries: list[dict] = [{"path": f"f{i}", "size": 1, "hash": "sha256:" + "0" * 64} for i in range(count)]
    for entry in entries if pad else []:
        entry["pad"] = "x" * pad
    return entries


def test_manifest_limits(alice: User) -> None:
    assert alice.api("POST", "datasets", json={"name": "many-files"}).status_code == 201
    r = alice.api("POST", "datasets/alice/many-files/uploads", json={"manifest": manifest(11)})
    assert_error(r, 413, "at most 10 files", "11")
    # Few entries but a manifest too large in bytes: the JSON body limit answers before it is parsed.
    r = alice.api("POST", "datasets/alice/many-files/uploads", json={"manifest": manifest(8, 10_000)})
    assert_error(r, 413, str(JSON_LIMIT))


def test_query_string_over_the_limit_is_400(alice: User) -> None:
    assert_error(alice.api("GET", "projects", params={"owner": "a" * 2000}), 400, "query string", "1024")
    assert alice.api("GET", "projects", params={"owner": "alice"}).status_code == 200


def test_long_names_are_400_with_a_short_message(alice: User) -> None:
    long = "a" * 4096
    for route in ("projects", "datasets", "endpoints"):
        assert_error(alice.api("POST", route, json={"name": long}), 400, "1-64 characters")
    assert_error(alice.api("GET", f"datasets/alice/{long}"), 400, "1-64 characters")
    assert_error(alice.api("GET", f"projects/{long}/x"), 400, "user name")
