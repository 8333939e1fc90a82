"""The served OpenAPI document and the route table describe the same API."""

from __future__ import annotations

import requests

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


def test_every_documented_error_uses_the_error_schema(platform: Platform) -> None:
    doc = requests.get(platform.api_url + "openapi.json", timeout=10).json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for code, resp in op["responses"].items():
                if code.startswith("4"):
                    assert resp == {"$ref": "#/components/responses/Error"}, (path, method, code)
