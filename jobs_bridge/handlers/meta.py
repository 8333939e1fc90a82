"""Service information, the caller's identity and quota, and the OpenAPI document."""

from __future__ import annotations

from jobs_bridge import __version__
from jobs_bridge.handlers.base import BaseHandler


class InfoHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"service": "floyd", "version": __version__, "api": "v1"})


class UserHandler(BaseHandler):
    async def get(self) -> None:
        caller = self.caller
        usage = await self.call(self.bridge.usage, caller.name)
        self.write_json({
            "name": caller.name,
            "admin": caller.admin,
            "storage_used": usage,
            "storage_quota": self.bridge.dataset_manager.quota_for(caller.name),
        })


class OpenAPIHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json(self.bridge.openapi_document())


default_handlers = [
    ("/api/v1/info", InfoHandler),
    ("/api/v1/user", UserHandler),
    ("/api/v1/openapi.json", OpenAPIHandler),
]
