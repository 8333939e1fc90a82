"""``/api/v1/pipelines``: start a run, list runs, show one, stop one; and the run's web page."""

from __future__ import annotations

from tornado import web

from jobs_bridge.errors import FloydError
from jobs_bridge.handlers.base import BaseHandler, to_http
from jobs_bridge.handlers.pages import PageHandler


class PipelineListHandler(BaseHandler):
    async def get(self) -> None:
        limit = self.int_argument("limit", 50, 1, 1000)
        items = await self.call(self.bridge.pipelines.list, self.caller, self.raw_argument("project") or None, limit)
        self.write_json({"items": items})

    async def post(self) -> None:
        self.write_json(await self.call(self.bridge.pipelines.submit, self.caller, self.json_body()), 201)


class PipelineHandler(BaseHandler):
    async def get(self, owner: str, project: str, number: str) -> None:
        self.write_json(await self.call(self.bridge.pipelines.get, self.caller, owner, project, number))


class PipelineStopHandler(BaseHandler):
    async def post(self, owner: str, project: str, number: str) -> None:
        try:
            result = await self.bridge.pipelines.stop(self.caller, owner, project, number)
        except FloydError as exc:
            raise to_http(exc) from None
        self.write_json(result)


class PipelinePage(PageHandler):
    """A run's DAG, each step's state live, links to the steps' job pages (pipeline.js)."""

    @web.authenticated
    async def get(self, owner: str, project: str, number: str) -> None:
        run = await self.call(self.bridge.pipelines.get, self.caller, owner, project, number)
        self.render_page("pipeline.html", run=run, xsrf_token=self.page_xsrf_token())


default_handlers = [
    ("/api/v1/pipelines", PipelineListHandler),
    ("/api/v1/pipelines/{owner}/{project}/{number}", PipelineHandler),
    ("/api/v1/pipelines/{owner}/{project}/{number}/stop", PipelineStopHandler),
    ("/pipelines/{owner}/{project}/{number}", PipelinePage),
]
