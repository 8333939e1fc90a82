"""``/api/v1/models``: the model registry (versions from job outputs, aliases, downloads)."""

from __future__ import annotations

from jobs_bridge.errors import FloydError
from jobs_bridge.handlers.base import BaseHandler, to_http
from jobs_bridge.handlers.datasets import DownloadHandler


class ModelListHandler(BaseHandler):
    async def get(self) -> None:
        items = await self.call(self.bridge.models.list, self.caller, self.optional_argument("owner"),
                                self.flag_argument("public"))
        self.write_json({"items": items})


class ModelHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json(await self.call(self.bridge.models.get, self.caller, owner, name))

    async def patch(self, owner: str, name: str) -> None:
        body = self.json_body()
        self.write_json(await self.call(self.bridge.models.update, self.caller, owner, name, body))

    async def delete(self, owner: str, name: str) -> None:
        await self.call(self.bridge.models.delete, self.caller, owner, name)
        self.set_status(204)
        self.finish()


class ModelVersionListHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json({"items": await self.call(self.bridge.models.versions, self.caller, owner, name)})

    async def post(self, owner: str, name: str) -> None:
        """Register a version from a job's output."""
        body = self.json_body()
        self.write_json(await self.call(self.bridge.models.register, self.caller, owner, name, body), 201)


class ModelVersionHandler(BaseHandler):
    async def get(self, owner: str, name: str, version: str) -> None:
        self.write_json(await self.call(self.bridge.models.version, self.caller, owner, name, version))

    async def delete(self, owner: str, name: str, version: str) -> None:
        force = self.flag_argument("force")
        self.write_json(await self.call(self.bridge.models.delete_version, self.caller, owner, name, version, force))


class ModelDownloadHandler(DownloadHandler):
    kind = "model"


class ModelAliasHandler(BaseHandler):
    async def put(self, owner: str, name: str, alias: str) -> None:
        """Move the alias; endpoints that follow it roll out a version with the model it names now."""
        body = self.json_body()
        result = await self.call(self.bridge.models.move_alias, self.caller, owner, name, alias, body)
        rollouts: list[dict] = []
        if result.pop("moved"):
            try:
                rollouts = await self.bridge.deployments.follow_alias(result["model_id"], alias, result["version"])
            except FloydError as exc:
                raise to_http(exc) from None
        self.write_json(result | {"rollouts": rollouts})

    async def delete(self, owner: str, name: str, alias: str) -> None:
        await self.call(self.bridge.models.delete_alias, self.caller, owner, name, alias)
        self.set_status(204)
        self.finish()


default_handlers = [
    ("/api/v1/models", ModelListHandler),
    ("/api/v1/models/{owner}/{name}", ModelHandler),
    ("/api/v1/models/{owner}/{name}/versions", ModelVersionListHandler),
    ("/api/v1/models/{owner}/{name}/versions/{version}", ModelVersionHandler),
    ("/api/v1/models/{owner}/{name}/versions/{version}/download", ModelDownloadHandler),
    ("/api/v1/models/{owner}/{name}/aliases/{alias}", ModelAliasHandler),
]
