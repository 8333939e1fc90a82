"""The served OpenAPI document and the route table describe the same API."""

from __future__ import annotations

import requests

from jobs_bridge import names
from jobs_bridge.datasets.listing import DEFAULT_LIMIT, MAX_LIMIT
from tests.support.platform import Platform
from tests.support.routes import route_methods


def test_openapi_matches_routes(platform: Platform) -> None:
    doc = requests.get(platform.api_url + "openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": "/services/floyd"}]
    documented = {path: sorted(m for m in ops if m in ("get", "post", "put", "patch", "delete", "head"))
                  for path, ops in doc["paths"].items()}
    served = {path: sorted(methods) for path, methods in route_methods().items()}
    assert documented == served


SHARED_ERRORS = {"400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
                 "409": "Conflict", "413": "TooLarge", "422": "Unprocessable", "429": "TooManyRequests",
                 "501": "NotImplemented", "503": "Unavailable", "507": "InsufficientStorage"}


def test_every_documented_error_uses_the_error_schema(platform: Platform) -> None:
    """Each error status of an API operation is the shared response of components/responses (a JSON
    Error); the pages' errors are HTML pages."""
    doc = requests.get(platform.api_url + "openapi.json", timeout=10).json()
    shared = doc["components"]["responses"]
    for name in SHARED_ERRORS.values():
        assert shared[name]["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    assert shared["TooManyRequests"]["headers"]["Retry-After"]["required"] is True
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for code, resp in op["responses"].items():
                if code[0] in "45":
                    want = SHARED_ERRORS[code] if path.startswith("/api/") else "PageError"
                    assert resp == {"$ref": f"#/components/responses/{want}"}, (path, method, code)


def test_name_patterns_are_the_servers(platform: Platform) -> None:
    """The document states the very patterns and lengths jobs_bridge/names.py enforces."""
    schemas = requests.get(platform.api_url + "openapi.json", timeout=10).json()["components"]["schemas"]
    assert (schemas["Name"]["pattern"], schemas["Name"]["maxLength"]) == (names.NAME_RE.pattern, names.NAME_MAX)
    assert (schemas["Owner"]["pattern"], schemas["Owner"]["maxLength"]) == (names.OWNER_RE.pattern, names.OWNER_MAX)


def test_numbers_state_their_range_and_404(platform: Platform) -> None:
    """Every number in a path has the bound the bridge enforces, and every API route with one
    documents the 404 that a number out of range gets (tests/bridge/test_hardening.py)."""
    doc = requests.get(platform.api_url + "openapi.json", timeout=10).json()
    shared = doc["components"]["parameters"]
    for path, ops in doc["paths"].items():
        params = [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in ops.get("parameters", [])]
        for param in params:
            if param["name"] in ("number", "key_id"):
                assert param["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, (path, param)
        if path.startswith("/api/") and any(f"{{{n}}}" in path for n in ("number", "version", "key_id")):
            for method, op in ops.items():
                if method != "parameters":
                    assert "404" in op["responses"], (path, method)
    limit = next(p for p in doc["paths"]["/api/v1/jobs"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 1000)
    files = doc["paths"]["/api/v1/datasets/{owner}/{name}/versions/{version}/files"]["get"]
    files_params = [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in files["parameters"]]
    page = next(p for p in files_params if p["name"] == "limit")["schema"]
    assert next(p for p in files_params if p["name"] == "after")["schema"]["maxLength"] == 1024
    assert (page["minimum"], page["maximum"], page["default"]) == (1, MAX_LIMIT, DEFAULT_LIMIT)
    assert "400" in files["responses"] and "next" in files["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    job = doc["components"]["schemas"]["JobRequest"]["properties"]
    assert all(job[f]["maximum"] == 2**31 - 1 for f in ("max_runtime", "concurrency", "gpus"))
