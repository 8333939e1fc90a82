"""Tornado handlers: parse and validate, call one manager method, write the result."""

from jobs_bridge.handlers import datasets, endpoints, jobs, meta, nodes, pages, projects, uploads, workspaces

API_MODULES = [meta, projects, datasets, uploads, workspaces, jobs, endpoints, nodes]
PAGE_MODULES = [pages]

__all__ = ["API_MODULES", "PAGE_MODULES"]
