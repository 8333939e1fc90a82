"""The bridge's route table with the HTTP methods each handler implements (shared by tests)."""

from __future__ import annotations

from tornado import web

from jobs_bridge.webapp import route_table

METHODS = ("get", "post", "put", "patch", "delete", "head")


def implemented(handler: type) -> list[str]:
    return [m for m in METHODS if getattr(handler, m) is not getattr(web.RequestHandler, m)]


def route_methods() -> dict[str, list[str]]:
    return {template: implemented(h) for template, h in route_table()}
