"""``/api/v1/projects``."""

from __future__ import annotations

from jobs_bridge.handlers.base import BaseHandler


class ProjectListHandler(BaseHandler):
    async def get(self) -> None:
        items = await self.call(self.bridge.project_manager.list, self.caller,
                                self.optional_argument("owner"))
        self.write_json({"items": items})

    async def post(self) -> None:
        body = self.json_body()
        item = await self.call(
            self.bridge.project_manager.create, self.caller, body.get("name"), body.get("description", "")
        )
        self.write_json(item, 201)


class ProjectHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json(await self.call(self.bridge.project_manager.get, self.caller, owner, name))

    async def delete(self, owner: str, name: str) -> None:
        await self.call(self.bridge.project_manager.delete, self.caller, owner, name)
        self.set_status(204)
        self.finish()


default_handlers = [
    ("/api/v1/projects", ProjectListHandler),
    ("/api/v1/projects/{owner}/{name}", ProjectHandler),
]
