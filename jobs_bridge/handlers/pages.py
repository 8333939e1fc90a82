"""Server-rendered pages, signed in through the Hub (HubOAuth)."""

from __future__ import annotations

from tornado import web

from jobs_bridge.errors import FloydError
from jobs_bridge.handlers.base import BaseHandler


class PageHandler(BaseHandler):
    api = False

    def write_error(self, status_code: int, **kwargs: object) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]  # type: ignore[index]
        message = getattr(exc, "message", None) or self._reason
        self.render("error.html", status=status_code, message=message)

    def render_page(self, template: str, **kwargs: object) -> None:
        self.render(template, user=self.caller, prefix=self.bridge.service_prefix,
                    hub_prefix=self.bridge.hub_prefix, **kwargs)


class HomePage(PageHandler):
    @web.authenticated
    async def get(self) -> None:
        caller = self.caller
        projects = await self.call(self.bridge.project_manager.list, caller)
        datasets = await self.call(self.bridge.dataset_manager.list, caller)
        public = [d for d in await self.call(self.bridge.dataset_manager.list, caller, public=True)
                  if d["owner"] != caller.name]
        usage = await self.call(self.bridge.usage, caller.name)
        quota = self.bridge.dataset_manager.quota.limit_for(caller.name)
        self.render_page("home.html", projects=projects, datasets=datasets, public=public, usage=usage, quota=quota)


class DatasetPage(PageHandler):
    @web.authenticated
    async def get(self, owner: str, name: str) -> None:
        try:
            dataset = await self.call(self.bridge.dataset_manager.get, self.caller, owner, name)
            versions = await self.call(self.bridge.dataset_manager.versions, self.caller, owner, name)
        except FloydError as exc:  # pragma: no cover - call() maps these already
            raise web.HTTPError(exc.status) from None
        self.render_page("dataset.html", dataset=dataset, versions=versions)


default_handlers = [
    ("/", HomePage),
    ("/datasets/{owner}/{name}", DatasetPage),
]
