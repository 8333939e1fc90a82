"""Tornado handlers: parse and validate, call one manager method, write the result."""

from jobs_bridge.handlers import (
    dataset_pages,
    datasets,
    endpoints,
    jobs,
    lineage,
    lineage_pages,
    meta,
    mlflow,
    model_pages,
    models,
    nodes,
    pages,
    pipelines,
    projects,
    schedules,
    tensorboards,
    uploads,
    workspaces,
)

API_MODULES = [meta, projects, datasets, uploads, workspaces, jobs, pipelines, endpoints, lineage, models, schedules,
               tensorboards, mlflow, nodes]
# Proxies with paths of their own (not in the route table or the OpenAPI document).
PROXY_HANDLERS = tensorboards.proxy_handlers
PAGE_MODULES = [pages, dataset_pages, lineage_pages, model_pages]

__all__ = ["API_MODULES", "PAGE_MODULES", "PROXY_HANDLERS"]
