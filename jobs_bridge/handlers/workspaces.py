"""``/api/v1/environments``, ``/api/v1/gpus`` and the spawner's ``/api/v1/workspaces/…`` calls."""

from __future__ import annotations

from jobs_bridge.auth.identity import acting_as
from jobs_bridge.handlers.base import BaseHandler


class EnvironmentsHandler(BaseHandler):
    async def get(self) -> None:
        self.caller  # noqa: B018  (authentication required)
        self.write_json({"items": self.bridge.environments_list.as_json()})


class GpusHandler(BaseHandler):
    async def get(self) -> None:
        caller = self.caller
        leases = await self.call(self.bridge.gpu_allocator.leases)
        if not caller.admin:  # who holds a GPU is the admins' business
            leases = [{**lease, "holder": None if lease["owner"] != caller.name else lease["holder"],
                       "owner": lease["owner"] if lease["owner"] == caller.name else None,
                       "busy": lease["holder"] is not None} for lease in leases]
        self.write_json({"items": leases})


class WorkspaceOptionsHandler(BaseHandler):
    async def get(self) -> None:
        user = self.optional_argument("user")
        admin = self.flag_argument("admin")
        caller = acting_as(self.caller, {"name": user, "admin": admin} if user is not None else None)
        self.write_json(await self.call(self.bridge.workspace_manager.options, caller))


class WorkspacePrepareHandler(BaseHandler):
    async def post(self) -> None:
        self.write_json(await self.call(self.bridge.workspace_manager.prepare, self.caller, self.json_body()))


class WorkspaceReleaseHandler(BaseHandler):
    async def post(self) -> None:
        self.write_json(await self.call(self.bridge.workspace_manager.release, self.caller, self.json_body()))


default_handlers = [
    ("/api/v1/environments", EnvironmentsHandler),
    ("/api/v1/gpus", GpusHandler),
    ("/api/v1/workspaces/options", WorkspaceOptionsHandler),
    ("/api/v1/workspaces/prepare", WorkspacePrepareHandler),
    ("/api/v1/workspaces/release", WorkspaceReleaseHandler),
]
