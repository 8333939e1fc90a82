"""``/api/v1/lineage`` (what made an object and what was made from it) and ``/api/v1/compare``
(runs side by side); their pages are in handlers/lineage_pages.py."""

from __future__ import annotations

from jobs_bridge.handlers.base import BaseHandler
from jobs_bridge.lineage.graph import MAX_DEPTH
from jobs_bridge.validate import INT_MAX


class LineageHandler(BaseHandler):
    async def get(self) -> None:
        depth = self.int_argument("depth", None, 1, MAX_DEPTH)
        self.write_json(await self.call(self.bridge.lineage.graph, self.caller, self.raw_argument("ref"), depth))


class CompareHandler(BaseHandler):
    async def get(self) -> None:
        group = self.int_argument("group", None, 0, INT_MAX)
        result = await self.call(self.bridge.comparison.compare, self.caller, self.optional_argument("jobs"), group,
                                 self.raw_argument("rank") or None, self.raw_argument("order") or "min",
                                 self.flag_argument("series"))
        self.write_json(result)


default_handlers = [
    ("/api/v1/lineage", LineageHandler),
    ("/api/v1/compare", CompareHandler),
]
