"""Tornado handlers: parse and validate, call one manager method, write the result."""

from jobs_bridge.handlers import (
    dataset_pages,
    datasets,
    endpoints,
    jobs,
    meta,
    mlflow,
    pages,
    projects,
    uploads,
    workspaces,
)

API_MODULES = [meta, projects, datasets, uploads, workspaces, jobs, endpoints, mlflow]
PAGE_MODULES = [pages, dataset_pages]

__all__ = ["API_MODULES", "PAGE_MODULES"]
