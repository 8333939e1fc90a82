"""The lineage page (the graph of one object) and the compare page (runs side by side)."""

from __future__ import annotations

from tornado import web

from jobs_bridge.handlers.pages import PageHandler
from jobs_bridge.lineage.graph import MAX_DEPTH
from jobs_bridge.validate import INT_MAX


class LineagePage(PageHandler):
    """The graph of one object (lineage.js draws it from the API); 404 when the caller may not see it."""

    @web.authenticated
    async def get(self) -> None:
        depth = self.int_argument("depth", None, 1, MAX_DEPTH)
        graph = await self.call(self.bridge.lineage.graph, self.caller, self.raw_argument("ref"), depth)
        self.render_page("lineage.html", graph=graph, xsrf_token=self.page_xsrf_token())


class ComparePage(PageHandler):
    """Runs side by side (ticked on the jobs page, or a sweep): curves overlaid, params, ranking."""

    @web.authenticated
    async def get(self) -> None:
        group = self.int_argument("group", None, 0, INT_MAX)
        jobs = self.optional_argument("jobs")
        result = await self.call(self.bridge.comparison.compare, self.caller, jobs, group)
        self.render_page("compare.html", result=result, jobs=jobs, group=group, xsrf_token=self.page_xsrf_token())


default_handlers = [
    ("/lineage", LineagePage),
    ("/compare", ComparePage),
]
