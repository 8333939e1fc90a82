"""``/api/v1/tensorboards``: open (start or find) a TensorBoard over jobs, list, show, stop; and
the proxy to a running one at ``/tensorboards/<owner>/<id>/…`` behind the Hub's login."""

from __future__ import annotations

from tornado import web
from tornado.httpclient import AsyncHTTPClient

from jobs_bridge.errors import FloydError, Unavailable
from jobs_bridge.handlers.base import BaseHandler, to_http

# What the proxy passes back from TensorBoard (hop-by-hop and cookie headers stay out).
PASSED_HEADERS = ("Content-Type", "Content-Encoding", "Cache-Control", "ETag", "Last-Modified", "Location",
                  "Content-Disposition", "X-Content-Type-Options")


class TensorBoardListHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"items": self.bridge.tensorboards.list(self.caller)})

    async def post(self) -> None:
        body = self.json_body()
        try:
            record, created = await self.bridge.tensorboards.open(self.caller, body)
        except FloydError as exc:
            raise to_http(exc) from None
        self.write_json(record, 201 if created else 200)


class TensorBoardHandler(BaseHandler):
    async def get(self, owner: str, tb_id: str) -> None:
        try:
            self.write_json(self.bridge.tensorboards.get(self.caller, owner, tb_id))
        except FloydError as exc:
            raise to_http(exc) from None

    async def delete(self, owner: str, tb_id: str) -> None:
        try:
            await self.bridge.tensorboards.close_board(self.caller, owner, tb_id)
        except FloydError as exc:
            raise to_http(exc) from None
        self.set_status(204)
        self.finish()


class TensorBoardProxy(BaseHandler):
    """A running TensorBoard's pages and data, for its owner (or an admin): a browser without a
    session goes through the Hub's login first, as for the bridge's pages."""

    SUPPORTED_METHODS = ("GET", "POST", "HEAD")

    def check_xsrf_cookie(self) -> None:
        """TensorBoard's own scripts POST read-only queries without the bridge's XSRF token; the
        session cookie alone reaches only what its owner may read."""

    @web.authenticated
    async def get(self, owner: str, tb_id: str, rest: str = "") -> None:
        await self.relay(owner, tb_id)

    @web.authenticated
    async def post(self, owner: str, tb_id: str, rest: str = "") -> None:
        await self.relay(owner, tb_id)

    @web.authenticated
    async def head(self, owner: str, tb_id: str, rest: str = "") -> None:
        await self.relay(owner, tb_id)

    async def relay(self, owner: str, tb_id: str) -> None:
        manager = self.bridge.tensorboards
        try:
            board = manager.find(self.caller, owner, tb_id, touch=True)
        except FloydError as exc:
            raise to_http(exc) from None
        headers = {k: v for k, v in self.request.headers.items()
                   if k in ("Content-Type", "Accept", "Accept-Encoding", "If-None-Match", "If-Modified-Since")}
        response = await AsyncHTTPClient().fetch(
            manager.upstream(board, self.request.uri or "/"), method=self.request.method or "GET", headers=headers,
            body=self.request.body if self.request.method == "POST" else None, raise_error=False,
            decompress_response=False, follow_redirects=False, request_timeout=120)
        if response.code == 599:
            raise to_http(Unavailable("The TensorBoard did not answer; open it again with floyd tensorboard JOB."))
        self.set_status(response.code, response.reason)
        for name in PASSED_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        if response.body and self.request.method != "HEAD":
            self.write(response.body)
        self.finish()


default_handlers = [
    ("/api/v1/tensorboards", TensorBoardListHandler),
    ("/api/v1/tensorboards/{owner}/{tb_id}", TensorBoardHandler),
]

# Outside the route table (like the endpoint proxy): every path below is TensorBoard's.
proxy_handlers = [(r"/tensorboards/(?P<owner>[^/]+)/(?P<tb_id>[0-9a-f]{12})(?P<rest>/.*)?", TensorBoardProxy)]
