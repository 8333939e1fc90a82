"""The model registry's pages: the caller's models, and one model with its versions and aliases."""

from __future__ import annotations

from tornado import web

from jobs_bridge.handlers.pages import PageHandler


class ModelsPage(PageHandler):
    """The caller's models (an admin's: everyone's) and the models shared with everybody."""

    @web.authenticated
    async def get(self) -> None:
        caller = self.caller
        models = await self.call(self.bridge.models.list, caller)
        shared = [m for m in await self.call(self.bridge.models.list, caller, None, True) if m["owner"] != caller.name]
        self.render_page("models.html", models=models, shared=shared)


class ModelPage(PageHandler):
    """One model: versions (source job, params, metrics), aliases with their history, and the
    endpoint versions that mount it, with the reason of a failed rollout."""

    @web.authenticated
    async def get(self, owner: str, name: str) -> None:
        model = await self.call(self.bridge.models.get, self.caller, owner, name)
        self.render_page("model.html", model=model)


default_handlers = [
    ("/models", ModelsPage),
    ("/models/{owner}/{name}", ModelPage),
]
