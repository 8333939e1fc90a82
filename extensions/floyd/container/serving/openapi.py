"""The documents that describe an endpoint's routes: OpenAPI 3 at ``/openapi.json`` for every
kind, and Kernel Gateway's Swagger 2.0 at ``/_api/spec/swagger.json`` for notebooks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from floyd.container.serving.predict import PREDICT_PATH
from floyd.container.serving.routes import openapi_path, path_params

OPENAPI_VERSION = "3.0.3"
_ERROR = {
    "type": "object",
    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["status", "message"],
}


def _document(title: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": OPENAPI_VERSION, "info": {"title": title, "version": "0.0.0"}, "paths": paths}


def _path_parameter(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def predict_path_item() -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ERROR}}}
    return {
        "post": {
            "summary": "Call predict(payload) with the JSON body",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
            "responses": {
                "200": {
                    "description": "predict's return value",
                    "content": {"application/json": {"schema": {}}},
                },
                "400": {"description": "The body is not JSON", **error},
                "500": {"description": "predict raised an exception", **error},
            },
        }
    }


def predict_openapi(title: str) -> dict[str, Any]:
    return _document(title, {PREDICT_PATH: predict_path_item()})


def notebook_openapi(
    title: str, routes: Iterable[tuple[str, str]], has_predict: bool = False
) -> dict[str, Any]:
    """One operation per ``(verb, path)`` route, in the order given (the order routes are tried);
    ``:name`` segments become path parameters.

    Plain pairs rather than the parsed notebook, so this module never imports notebook_http."""
    paths: dict[str, Any] = {}
    for verb, route in routes:
        operation: dict[str, Any] = {
            "responses": {"200": {"description": "Success", "content": {"text/plain": {"schema": {}}}}}
        }
        if params := [_path_parameter(name) for name in path_params(route)]:
            operation["parameters"] = params
        paths.setdefault(openapi_path(route), {})[verb.lower()] = operation
    if has_predict and PREDICT_PATH not in paths:
        paths[PREDICT_PATH] = predict_path_item()
    return _document(title, paths)


def kg_swagger(title: str, annotations: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Kernel Gateway's own spec: Swagger 2.0, paths as annotated (``(verb, path)`` in notebook
    order), every response a 200."""
    paths: dict[str, Any] = {}
    for verb, route in annotations:
        paths.setdefault(route, {})[verb.lower()] = {"responses": {"200": {"description": "Success"}}}
    return {"swagger": "2.0", "paths": paths, "info": {"version": "0.0.0", "title": title}}


_FLASK_CONVERTERS = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
_FLASK_RULE = re.compile(r"<(?:([a-zA-Z_][\w]*)(?:\([^)]*\))?:)?([a-zA-Z_][\w]*)>")


def flask_openapi(app: Any, title: str) -> dict[str, Any]:
    """Paths and methods from a Flask ``url_map`` (``<int:x>`` → an integer path parameter)."""
    paths: dict[str, Any] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        params = [
            _path_parameter(name, _FLASK_CONVERTERS.get(conv or ""))
            for conv, name in _FLASK_RULE.findall(rule.rule)
        ]
        item = paths.setdefault(_FLASK_RULE.sub(lambda m: "{" + m.group(2) + "}", rule.rule), {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "operationId": rule.endpoint,
                "responses": {"200": {"description": "Success"}},
            }
            if params:
                operation["parameters"] = params
            item[method.lower()] = operation
    return _document(title, paths)


def empty_openapi(title: str) -> dict[str, Any]:
    """For apps whose routes we cannot read (plain WSGI/ASGI callables)."""
    return _document(title, {})
