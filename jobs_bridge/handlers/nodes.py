"""``/api/v1/nodes``: the machines jobs run on (the swarm runtime's nodes), for admins."""

from __future__ import annotations

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import Forbidden
from jobs_bridge.handlers.base import BaseHandler


def admin_only(caller: Caller) -> None:
    if not caller.admin:
        raise Forbidden("Only an admin can see and change the nodes jobs run on.")


class NodesHandler(BaseHandler):
    async def get(self) -> None:
        admin_only(self.caller)
        executor = self.bridge.job_manager.executor
        self.write_json({"runtime": executor.name, "items": await self.call(executor.nodes)})


class NodeHandler(BaseHandler):
    async def patch(self, name: str) -> None:
        admin_only(self.caller)
        body = self.json_body()
        executor = self.bridge.job_manager.executor
        self.write_json(await self.call(executor.set_availability, name, body.get("availability")))


default_handlers = [
    ("/api/v1/nodes", NodesHandler),
    ("/api/v1/nodes/{name}", NodeHandler),
]
