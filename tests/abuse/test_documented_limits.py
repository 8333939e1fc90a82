"""The served OpenAPI document states the limits the other tests here reach."""

from __future__ import annotations

import requests

from tests.support.platform import Platform

TOO_LARGE = {"$ref": "#/components/responses/TooLarge"}
TOO_MANY = {"$ref": "#/components/responses/TooManyRequests"}


def test_limits_are_in_the_openapi_document(platform: Platform) -> None:
    doc = requests.get(platform.api_url + "openapi.json", timeout=10).json()
    schemas, paths = doc["components"]["schemas"], doc["paths"]
    assert schemas["Name"]["maxLength"] == 64
    assert schemas["Manifest"]["maxItems"] >= 1
    assert doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for route in ("/api/v1/projects", "/api/v1/datasets", "/api/v1/endpoints"):
        body = paths[route]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["name"] == {"$ref": "#/components/schemas/Name"}
        assert paths[route]["post"]["responses"]["413"] == TOO_LARGE
    assert paths["/api/v1/uploads/{upload_id}/blobs/{hash}"]["put"]["responses"]["413"] == TOO_LARGE
    assert paths["/api/v1/uploads/{upload_id}/pack"]["post"]["responses"]["413"] == TOO_LARGE
    upload = paths["/api/v1/datasets/{owner}/{name}/uploads"]["post"]
    assert upload["requestBody"]["content"]["application/json"]["schema"]["properties"]["manifest"] == \
        {"$ref": "#/components/schemas/Manifest"}
    for route in ("/api/v1/jobs/{owner}/{project}/{number}/logs",
                  "/api/v1/endpoints/{owner}/{name}/versions/{number}/logs"):
        assert paths[route]["get"]["responses"]["429"] == TOO_MANY
    assert "Retry-After" in doc["info"]["description"] and "max_query_bytes" in doc["info"]["description"]
