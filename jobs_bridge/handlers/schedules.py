"""``/api/v1/schedules``: cron schedules that submit a stored job request (create, list, show,
pause/resume and other changes, delete)."""

from __future__ import annotations

from jobs_bridge.handlers.base import BaseHandler


class ScheduleListHandler(BaseHandler):
    async def get(self) -> None:
        owner = self.optional_argument("owner")
        self.write_json({"items": await self.call(self.bridge.schedules.list, self.caller, owner)})

    async def post(self) -> None:
        body = self.json_body()
        result = await self.call(self.bridge.schedules.create, self.caller, body)
        self.write_json(result, 200 if body.get("check_only") is True else 201)


class ScheduleHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json(await self.call(self.bridge.schedules.get, self.caller, owner, name))

    async def patch(self, owner: str, name: str) -> None:
        body = self.json_body()
        self.write_json(await self.call(self.bridge.schedules.update, self.caller, owner, name, body))

    async def delete(self, owner: str, name: str) -> None:
        await self.call(self.bridge.schedules.delete, self.caller, owner, name)
        self.set_status(204)
        self.finish()


default_handlers = [
    ("/api/v1/schedules", ScheduleListHandler),
    ("/api/v1/schedules/{owner}/{name}", ScheduleHandler),
]
