"""Server-rendered pages, signed in through the Hub (HubOAuth); the dataset pages are in dataset_pages.py."""

from __future__ import annotations

import time
from typing import Any

from tornado import web

from floyd.formatting import fmt_bytes, fmt_duration, fmt_ms, fmt_resources, fmt_when
from jobs_bridge.handlers.base import BaseHandler
from jobs_bridge.handlers.nodes import admin_only


# Formatting shared by the templates is the client's (floyd.formatting: the CLI reads the same);
# static/common.js formats the same way when it refreshes a page.
def fmt_metric(name: str, value: float) -> str:
    if name == "system/memory_bytes":
        return f"memory {fmt_bytes(value)}"
    if name == "system/cpu_percent":
        return f"cpu {value:.0f}%"
    return f"{name}={value:.4g}"


def fmt_metrics(latest: dict[str, float]) -> str:
    names = sorted(latest, key=lambda n: (n.startswith("system/"), n))
    return ", ".join(fmt_metric(n, latest[n]) for n in names) or "—"


def endpoint_row(ep: dict) -> dict:
    """What the endpoints table shows of one endpoint: the serving version and its counters, and
    the newest version when that one is not (yet) serving (deploying, failed)."""
    by_number = {v["number"]: v for v in ep["versions"]}
    serving = by_number.get(ep["serving_version"])
    newest = ep["versions"][0] if ep["versions"] else None
    pending = newest if newest and newest is not serving and newest["state"] in ("deploying", "failed") else None
    return {"serving": serving, "pending": pending, "newest": newest,
            "stats": serving["stats"] if serving else None}


class PageHandler(BaseHandler):
    api = False

    def error_body(self, status_code: int, message: str) -> None:
        self.render("error.html", status=status_code, message=message)

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(fmt_duration=fmt_duration, fmt_when=fmt_when, fmt_bytes=fmt_bytes,
                         fmt_resources=fmt_resources, fmt_metrics=fmt_metrics, fmt_ms=fmt_ms)
        return namespace

    def page_xsrf_token(self) -> str:
        """The token that script requests send as X-XSRFToken (or ``_xsrf`` in an EventSource URL).

        Reading it sets the ``_xsrf`` cookie. JupyterHub's HubOAuth accepts the login cookie on a
        script's request (Sec-Fetch-Mode: cors) only with this token, GET included.
        """
        token = self.xsrf_token
        return token.decode() if isinstance(token, bytes) else str(token)

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
        quota = self.bridge.dataset_manager.quota_for(caller.name)
        self.render_page("home.html", projects=projects, datasets=datasets, public=public, usage=usage, quota=quota)


class JobsPage(PageHandler):
    """The caller's jobs (an admin's: everyone's); job.js refreshes the table every 2 s."""

    @web.authenticated
    async def get(self) -> None:
        jobs = await self.call(self.bridge.job_manager.list, self.caller, None, None, None, 200)
        self.render_page("jobs.html", jobs=jobs, xsrf_token=self.page_xsrf_token())


class JobPage(PageHandler):
    """One job: its record, the live log, metric charts, outputs and a Stop button."""

    @web.authenticated
    async def get(self, owner: str, project: str, number: str) -> None:
        job = await self.call(self.bridge.job_manager.get, self.caller, owner, project, number)
        self.render_page("job.html", job=job, xsrf_token=self.page_xsrf_token())


class EndpointsPage(PageHandler):
    """The caller's endpoints (an admin's: everyone's) with the serving version and its counters."""

    @web.authenticated
    async def get(self) -> None:
        endpoints = await self.call(self.bridge.deployments.list, self.caller)
        self.render_page("endpoints.html", endpoints=[(ep, endpoint_row(ep)) for ep in endpoints])


class EndpointPage(PageHandler):
    """One endpoint: URLs, versions, request stats, the traffic chart, the live log, API keys.

    endpoint.js refreshes the stats, the chart and the version states from the API."""

    @web.authenticated
    async def get(self, owner: str, name: str) -> None:
        manager = self.bridge.deployments
        endpoint = await self.call(manager.get, self.caller, owner, name)
        # metrics() has the counters of stopped versions too (get() only of running ones).
        metrics = await self.call(manager.metrics, self.caller, owner, name, time.time() - 3600)
        keys = await self.call(manager.list_keys, self.caller, owner, name)
        versions = endpoint["versions"]
        serving = endpoint["serving_version"]
        log_version = serving if serving is not None else (versions[0]["number"] if versions else None)
        self.render_page("endpoint.html", endpoint=endpoint, versions=versions,
                         stats=[v for v in metrics["versions"] if v["requests"] or v["state"] == "ready"],
                         keys=keys, log_version=log_version, xsrf_token=self.page_xsrf_token())


class NodesPage(PageHandler):
    """Admins: the machines jobs run on (the swarm runtime's nodes), as ``floyd admin nodes`` shows them."""

    @web.authenticated
    async def get(self) -> None:
        admin_only(self.caller)
        executor = self.bridge.job_manager.executor
        self.render_page("nodes.html", runtime=executor.name, nodes=await self.call(executor.nodes))


default_handlers = [
    ("/", HomePage),
    ("/jobs", JobsPage),
    ("/jobs/{owner}/{project}/{number}", JobPage),
    ("/serving", EndpointsPage),
    ("/serving/{owner}/{name}", EndpointPage),
    ("/nodes", NodesPage),
]
