"""Tornado handlers: parse and validate, call one manager method, write the result."""

from jobs_bridge.handlers import (
    datasets,
    endpoints,
    jobs,
    meta,
    pages,
    pipelines,
    projects,
    uploads,
    workspaces,
)

API_MODULES = [meta, projects, datasets, uploads, workspaces, jobs, pipelines, endpoints]
PAGE_MODULES = [pages]

__all__ = ["API_MODULES", "PAGE_MODULES"]
