"""Issue 17, "no 5xx from any input": refusals raised anywhere in a handler keep their status,
numbers out of range are 4xx, 405 names the allowed methods, flags are JSON booleans only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import requests

from floyd.client.ignore import IgnoreRules
from floyd.client.transfer import upload_code
from tests.support.jobs import client_for
from tests.support.platform import Platform, User, write_tree
from tests.support.routes import route_methods


def test_options_for_someone_else_is_403(alice: User, bob: User) -> None:
    """The refusal comes from acting_as() in the handler, before any manager call."""
    r = alice.api("GET", "workspaces/options", params={"user": bob.name})
    assert r.status_code == 403, r.text
    assert r.json() == {"status": 403, "message": "You can only prepare your own workspaces."}
    assert alice.api("GET", "workspaces/options", params={"user": alice.name}).status_code == 200


INT_MAX = 2**31 - 1  # the bound openapi.yaml states for every integer (a PostgreSQL INTEGER)
OUT_OF_RANGE = [2**64, -1, 10**30]
PATH_NUMBERS = ("{number}", "{version}", "{key_id}")  # every path parameter that names a stored number


@pytest.fixture(scope="module")
def stocked(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """alice's project with a code snapshot, a dataset and an endpoint, all named 'hardening'."""
    alice = platform.user("alice")
    alice.api("POST", "projects", json={"name": "hardening"})
    alice.api("POST", "datasets", json={"name": "hardening"})
    alice.api("POST", "endpoints", json={"name": "hardening"})
    root = write_tree(tmp_path_factory.mktemp("hardening"), {"run.py": b"print('never runs')\n"})
    snap = upload_code(client_for(alice), "alice", "hardening", root, IgnoreRules.for_directory(root).keep)
    return {"snapshot": snap.version["id"]}


def numbered_routes() -> list[tuple[str, str]]:
    return [(t, m) for t, methods in sorted(route_methods().items()) for m in methods
            if any(p in t for p in PATH_NUMBERS)]


def test_the_walk_covers_every_kind_of_number() -> None:
    templates = {t for t, _ in numbered_routes()}
    assert {"/api/v1/jobs/{owner}/{project}/{number}/restart", "/jobs/{owner}/{project}/{number}",
            "/api/v1/datasets/{owner}/{name}/versions/{version}",
            "/api/v1/endpoints/{owner}/{name}/versions/{number}",
            "/api/v1/endpoints/{owner}/{name}/keys/{key_id}"} <= templates


@pytest.mark.parametrize("number", OUT_OF_RANGE, ids=str)
@pytest.mark.parametrize("template,method", numbered_routes())
def test_numbers_out_of_range_in_paths_are_404(platform: Platform, stocked: dict, template: str, method: str,
                                                number: int) -> None:
    values = {"owner": "alice", "project": "hardening", "name": "hardening"}
    path = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(number)), template)
    alice = platform.user("alice")
    r = requests.request(method.upper(), platform.url + "services/floyd" + path, headers=alice.headers,
                         json={} if method in ("post", "put", "patch") else None, allow_redirects=False, timeout=30)
    assert r.status_code == 404, (path, method, r.status_code, r.text[:300])
    if template.startswith("/api/") and method != "head":
        assert r.json()["status"] == 404 and r.json()["message"]


@pytest.mark.parametrize("value", [*OUT_OF_RANGE, 0, 1001, "many", "²"], ids=str)
def test_query_limit_out_of_range_is_400(alice: User, value: object) -> None:
    r = alice.api("GET", "jobs", params={"limit": value})
    assert r.status_code == 400, r.text
    assert "'limit' must be a whole number from 1 to 1000" in r.json()["message"]


@pytest.mark.parametrize("value", OUT_OF_RANGE, ids=str)
def test_query_group_out_of_range_is_400(alice: User, value: int) -> None:
    r = alice.api("GET", "jobs", params={"group": value})
    assert r.status_code == 400, r.text
    assert f"from 0 to {INT_MAX}" in r.json()["message"]


@pytest.mark.parametrize("value", [*OUT_OF_RANGE, "²", 1.5, True], ids=repr)
@pytest.mark.parametrize("field", ["max_runtime", "concurrency"])
def test_body_quantity_out_of_range_is_422(alice: User, stocked: dict, field: str, value: object) -> None:
    body = {"project": "alice/hardening", "snapshot": stocked["snapshot"], "command": "python run.py", field: value}
    r = alice.api("POST", "jobs", json=body)
    assert r.status_code == 422, r.text
    low = 0
    assert r.json()["message"].startswith(f"'{field}' must be a whole number from {low} to {INT_MAX}")
    assert alice.api("GET", "jobs", params={"project": "alice/hardening"}).json()["items"] == []


@pytest.mark.parametrize("number", OUT_OF_RANGE, ids=str)
def test_body_references_out_of_range_are_404(alice: User, stocked: dict, number: int) -> None:
    base = {"project": "alice/hardening", "snapshot": stocked["snapshot"], "command": "python run.py"}
    for extra in ({"parent": f"alice/hardening/{number}"}, {"inputs": [f"alice/hardening/{number}/output"]},
                  {"inputs": [f"hardening:{number}"]}):
        r = alice.api("POST", "jobs", json={**base, **extra})
        assert r.status_code == 404, (extra, r.text)
    r = alice.api("POST", "datasets/alice/hardening/from-job", json={"job": f"alice/hardening/{number}"})
    assert r.status_code == 404, r.text


def test_memory_of_hundreds_of_digits_is_422(alice: User, stocked: dict) -> None:
    body = {"project": "alice/hardening", "snapshot": stocked["snapshot"], "command": "python run.py",
            "memory": "9" * 400 + "G"}
    r = alice.api("POST", "jobs", json=body)
    assert r.status_code == 422 and "Invalid memory" in r.json()["message"], r.text


def test_postgres_integer_columns_bound_every_number(pg_platform: Platform, tmp_path: Path) -> None:
    """2**31 fits SQLite's integers but not PostgreSQL's INTEGER columns (the INSERT would fail): it
    is refused with the range while the request is checked, before anything else is tried."""
    alice = pg_platform.user("alice")
    alice.api("POST", "projects", json={"name": "hardening"})
    root = write_tree(tmp_path / "code", {"run.py": b"print('never runs')\n"})
    snap = upload_code(client_for(alice), "alice", "hardening", root, IgnoreRules.for_directory(root).keep)
    body = {"project": "alice/hardening", "snapshot": snap.version["id"], "command": "python run.py"}
    r = alice.api("POST", "jobs", json={**body, "max_runtime": INT_MAX + 1})
    assert r.status_code == 422 and f"from 0 to {INT_MAX}" in r.json()["message"], r.text
    assert alice.api("GET", f"jobs/alice/hardening/{INT_MAX + 1}").status_code == 404
    assert alice.api("GET", "jobs", params={"project": "alice/hardening"}).json()["items"] == []


def unimplemented_routes() -> list[tuple[str, str, list[str]]]:
    """Each route with one method it does not implement, and the methods it does."""
    out = []
    for template, methods in sorted(route_methods().items()):
        missing = [m for m in ("delete", "put", "patch", "post", "get") if m not in methods]
        if missing:
            out.append((template, missing[0], methods))
    return out


@pytest.mark.parametrize("template,method,allowed", unimplemented_routes())
def test_405_names_the_allowed_methods(platform: Platform, stocked: dict, template: str, method: str,
                                       allowed: list[str]) -> None:
    values = {"owner": "alice", "project": "hardening", "name": "hardening"}
    path = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), template)
    alice = platform.user("alice")
    r = requests.request(method.upper(), platform.url + "services/floyd" + path, headers=alice.headers,
                         json={} if method in ("post", "put", "patch") else None, allow_redirects=False, timeout=30)
    assert r.status_code == 405, (path, method, r.status_code, r.text[:300])
    assert sorted(m.strip() for m in r.headers["Allow"].split(",")) == sorted(m.upper() for m in allowed)
    if template.startswith("/api/"):
        assert r.json()["status"] == 405


def test_405_for_a_method_tornado_never_routes(alice: User) -> None:
    r = alice.api("OPTIONS", "jobs")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST", (r.status_code, r.headers)


NOT_BOOLEANS = ["yes", "no", "true", 1, 0, None]


@pytest.mark.parametrize("value", NOT_BOOLEANS, ids=repr)
def test_flags_in_bodies_are_json_booleans_only(platform: Platform, stocked: dict, value: object) -> None:
    alice = platform.user("alice")
    data = b"flag bytes"
    manifest = [{"path": "f.txt", "size": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}]
    cases = [
        ("POST", "datasets", {"name": "flagged", "public": value}, "public"),
        ("PATCH", "datasets/alice/hardening", {"public": value}, "public"),
        ("POST", "datasets/alice/hardening/uploads", {"manifest": manifest, "allow_duplicate": value}, "allow_duplicate"),
        ("POST", "endpoints", {"name": "flagged", "public": value}, "public"),
        ("PATCH", "endpoints/alice/hardening", {"public": value}, "public"),
        ("POST", "workspaces/prepare", {"dry_run": value}, "dry_run"),
    ]
    for method, path, body, field in cases:
        r = alice.api(method, path, json=body)
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        assert f"'{field}' must be true or false" in r.json()["message"], (path, r.text)
    assert alice.api("GET", "datasets/alice/flagged").status_code == 404
    assert alice.api("GET", "endpoints/alice/flagged").status_code == 404
    assert alice.api("GET", "datasets/alice/hardening").json()["public"] is False
    r = platform.admin.api("POST", "workspaces/prepare", json={"user": {"name": "alice", "admin": value}, "dry_run": True})
    assert r.status_code == 400 and "'user.admin' must be true or false" in r.json()["message"], r.text
