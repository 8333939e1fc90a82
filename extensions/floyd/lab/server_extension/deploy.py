"""The Lab's "Deploy as endpoint": ``POST /floyd/api/deploy`` and version polling.

==================================================  ==============================================
``POST /floyd/api/deploy``                          snapshot the code directory (as ``run`` does)
                                                    and deploy a new version of endpoint ``name``
``GET  /floyd/api/endpoints/<name>/versions/<n>``   one version: state, reason, ``log_tail``
==================================================  ==============================================

The request is ``floyd deploy``'s: :func:`floyd.client.deploy.build_version_request` reads
floyd.yml of the code directory as the CLI does, the fields of the body win. The endpoint belongs to the
owner of the workspace's project (an endpoint serves its owner's projects only); it is created when
missing, and deleted again if its first version is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from floyd.client.deploy import ENTRY_SUFFIXES, DeployOptions, build_version_request, deploy_new_version
from floyd.client.errors import FloydClientError
from floyd.client.http import FloydClient
from floyd.client.project_config import check_cpus, check_memory
from floyd.lab.server_extension.handler import BadInput, FloydHandler, only_keys
from floyd.lab.workspace import code_dir, make_client, relative_to_code, workspace_project

DEPLOY_KEYS = {"path", "name", "entry", "replicas", "public", "environment", "cpus", "memory", "gpus", "data",
               "message"}


def deploy_options(body: dict, server_root: Path, root: Path) -> tuple[str, DeployOptions]:
    """The Lab's body → (endpoint name, options); raises BadInput naming the field."""
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
    opts = DeployOptions(entry=entry, environment=body.get("environment") or None, gpus=gpus, cpus=cpus,
                         memory=body.get("memory") or None, replicas=replicas, data=data or (), public=public,
                         message=(body.get("message") or "").strip() or None)
    if opts.cpus is not None:
        check_cpus(opts.cpus, "'cpus'")
    if opts.memory is not None:
        check_memory(opts.memory, "'memory'")
    opts.check()
    return name, opts  # refused here, before anything is uploaded


def deploy_from_lab(client: FloydClient, project: str, root: Path, name: str, opts: DeployOptions) -> dict:
    """What ``floyd deploy NAME`` does up to the posted version (state ``deploying``), for the
    owner of the workspace's project (an endpoint serves its owner's projects only)."""
    owner = project.split("/", 1)[0]
    request = build_version_request(project, root, opts)
    done = deploy_new_version(client, owner, name, request, root, opts.public)
    return {**done.version, "endpoint": f"{owner}/{name}", "name": name, "endpoint_url": done.endpoint["url"],
            "public": bool(done.endpoint.get("public")), "created": done.created, "upload": done.upload.facts()}


class DeployHandler(FloydHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        root = code_dir()
        try:
            name, opts = deploy_options(self.body(), self.server_root, root)
            project = workspace_project(root)
        except FloydClientError as exc:
            return self.write_problem(400, exc.message)
        await self.guarded(lambda: deploy_from_lab(make_client(), project, root, name, opts), 202)


class VersionHandler(FloydHandler):
    @tornado.web.authenticated
    async def get(self, name: str, number: str) -> None:
        def version() -> Any:
            owner = self.project().split("/", 1)[0]
            return make_client().get_version(owner, name, int(number))

        await self.guarded(version)

