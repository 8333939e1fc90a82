"""The Lab's "Deploy as endpoint": ``POST /floyd/api/deploy`` and version polling.

==================================================  ==============================================
``POST /floyd/api/deploy``                          snapshot the code directory (as ``run`` does)
                                                    and deploy a new version of endpoint ``name``
``GET  /floyd/api/endpoints/<name>/versions/<n>``   one version: state, reason, ``log_tail``
==================================================  ==============================================

The request is ``floyd deploy``'s: floyd.yml of the code directory is read as the CLI reads it
(:func:`floyd.cli.deploy.version_body`), the fields of the body win. The endpoint belongs to the
owner of the workspace's project (an endpoint serves its owner's projects only); it is created when
missing, and deleted again if its first version is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from floyd.cli.deploy import ENTRY_SUFFIXES, DeployOptions, check_options, version_body
from floyd.cli.jobs import data_source
from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.client.http import FloydClient
from floyd.client.project_config import check_cpus, check_memory
from floyd.lab.job import code_dir, job_inputs, make_client, relative_to_code, snapshot, workspace_project
from floyd.lab.server_extension.app import BadInput, FloydHandler, only_keys

DEPLOY_KEYS = {"path", "name", "entry", "replicas", "public", "environment", "cpus", "memory", "gpus", "data",
               "message"}


def deploy_options(body: dict, server_root: Path, root: Path) -> tuple[str, str | None, DeployOptions, list | None]:
    """The Lab's body → (endpoint name, entry, options, inputs); raises BadInput naming the field."""
    only_keys(body, DEPLOY_KEYS)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadInput("Name the endpoint: 'name', e.g. iris (lower-case letters, digits and dashes).")
    name = name.strip()
    if "/" in name:
        raise BadInput(f"'name' is the endpoint's name without its owner, not {name!r}.")
    for key in ("path", "entry", "environment", "memory", "message"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise BadInput(f"'{key}' must be a string.")
    entry = (body.get("entry") or "").strip() or None
    path = (body.get("path") or "").strip()
    if entry is None:
        if not path:
            raise BadInput("Say what to serve: 'path' of an app.py or a notebook, or 'entry'.")
        entry = relative_to_code(path.lstrip("/"), root, server_root)
        if not entry.endswith(ENTRY_SUFFIXES):
            raise BadInput(f"{entry} cannot be served: the entry is a .py file (app.py, serve.py) or a notebook "
                           "(.ipynb).")
    replicas = body.get("replicas")
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int)):
        raise BadInput(f"'replicas' must be a whole number of at least 1, not {replicas!r}.")
    if replicas is not None and replicas < 1:
        raise BadInput(f"'replicas' must be a whole number of at least 1, not {replicas}.")
    gpus = body.get("gpus")
    if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
        raise BadInput(f"'gpus' must be a whole number of at least 0, not {gpus!r}.")
    cpus = body.get("cpus")
    if cpus in ("", None):
        cpus = None
    elif isinstance(cpus, bool) or not isinstance(cpus, (int, float)):
        raise BadInput(f"'cpus' must be a number such as 0.5 or 2, not {cpus!r}.")
    public = body.get("public", False)
    if not isinstance(public, bool):
        raise BadInput(f"'public' must be true or false, not {public!r}.")
    data = body.get("data") or None
    if data is not None and not isinstance(data, list):
        raise BadInput("'data' must be a list such as [{\"source\": \"12/output\", \"mount\": \"model\"}].")
    opts = DeployOptions(environment=body.get("environment") or None, gpu=gpus, cpus=cpus,
                         memory=body.get("memory") or None, replicas=replicas, public=public,
                         message=(body.get("message") or "").strip() or None)
    if opts.cpus is not None:
        check_cpus(opts.cpus, "'cpus'")
    if opts.memory is not None:
        check_memory(opts.memory, "'memory'")
    check_options(opts)
    return name, entry, opts, job_inputs(data)  # refused here, before anything is uploaded


def deploy(client: FloydClient, project: str, root: Path, name: str, entry: str | None, opts: DeployOptions,
           inputs: list[dict] | None) -> dict:
    """What ``floyd deploy NAME`` does up to the posted version (state ``deploying``)."""
    owner = project.split("/", 1)[0]
    try:
        existing: dict | None = client.get_endpoint(owner, name)  # also checks NAME before uploading
    except FloydAPIError as exc:
        if exc.status != 404:
            raise
        existing = None
    up = snapshot(client, project, root)  # the helper /floyd/api/run uses
    body = version_body(root, project, up.version["id"], entry, opts)
    if inputs:
        body["inputs"] = [{**i, "source": data_source(i["source"], project)} for i in inputs]
    endpoint = existing or client.create_endpoint(name, opts.public, owner)
    try:
        version = client.deploy_version(owner, name, body)
    except FloydAPIError:
        if existing is None:  # an endpoint that never had a version is not worth keeping
            try:
                client.delete_endpoint(owner, name)
            except FloydClientError:
                pass
        raise
    if opts.public and not endpoint.get("public"):
        endpoint = client.update_endpoint(owner, name, public=True)
    return {**version, "endpoint": f"{owner}/{name}", "name": name, "endpoint_url": endpoint["url"],
            "public": bool(endpoint.get("public")), "created": existing is None,
            "upload": {"files": up.files, "sent_files": up.sent_files, "sent_bytes": up.sent_bytes,
                       "duplicate": up.duplicate}}


class DeployHandler(FloydHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        root = code_dir()
        try:
            name, entry, opts, inputs = deploy_options(self.body(), self.server_root, root)
            project = workspace_project(root)
        except FloydClientError as exc:
            return self.write_problem(400, exc.message)
        await self.guarded(lambda: deploy(make_client(), project, root, name, entry, opts, inputs), 202)


class VersionHandler(FloydHandler):
    @tornado.web.authenticated
    async def get(self, name: str, number: str) -> None:
        def version() -> Any:
            owner = self.project().split("/", 1)[0]
            return make_client().get_version(owner, name, int(number))

        await self.guarded(version)


HANDLERS = [
    (r"/floyd/api/deploy", DeployHandler),
    (r"/floyd/api/endpoints/([^/]+)/versions/(\d+)", VersionHandler),
]
