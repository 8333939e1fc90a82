"""``/api/v1/endpoints``: create, deploy versions, stop, keys, metrics, logs, traffic splits."""

from __future__ import annotations

import time

from jobs_bridge.errors import FloydError
from jobs_bridge.handlers.base import BaseHandler, to_http
from jobs_bridge.handlers.logstream import LogStreamMixin
from jobs_bridge.validate import bounded_number

MAX_MINUTES = 7 * 24 * 60  # the metrics window: a week at most


class EndpointListHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"items": await self.call(self.bridge.deployments.list, self.caller)})

    async def post(self) -> None:
        body = self.json_body()
        try:
            result = await self.bridge.deployments.create(self.caller, body)
        except FloydError as exc:
            raise to_http(exc) from None
        self.write_json(result, 201)


class EndpointHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json(await self.call(self.bridge.deployments.get, self.caller, owner, name))

    async def patch(self, owner: str, name: str) -> None:
        body = self.json_body()
        try:
            self.write_json(await self.bridge.deployments.update(self.caller, owner, name, body))
        except FloydError as exc:
            raise to_http(exc) from None

    async def delete(self, owner: str, name: str) -> None:
        self.caller  # noqa: B018
        try:
            await self.bridge.deployments.delete(self.caller, owner, name)
        except FloydError as exc:
            raise to_http(exc) from None
        self.set_status(204)
        self.finish()


class VersionListHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json({"items": await self.call(self.bridge.deployments.versions, self.caller, owner, name)})

    async def post(self, owner: str, name: str) -> None:
        body = self.json_body()
        try:
            result = await self.bridge.deployments.deploy(self.caller, owner, name, body)
        except FloydError as exc:
            raise to_http(exc) from None
        self.write_json(result, 202)


class VersionHandler(BaseHandler):
    async def get(self, owner: str, name: str, number: str) -> None:
        self.write_json(await self.call(self.bridge.deployments.version, self.caller, owner, name, number))


class VersionStopHandler(BaseHandler):
    async def post(self, owner: str, name: str, number: str) -> None:
        self.caller  # noqa: B018
        try:
            self.write_json(await self.bridge.deployments.stop_version(self.caller, owner, name, number))
        except FloydError as exc:
            raise to_http(exc) from None


class VersionLogsHandler(LogStreamMixin, BaseHandler):
    """The version's container logs (all replicas, each line tagged [rN]): plain text, or live
    with ``?follow=1`` as server-sent events, like job logs."""

    async def get(self, owner: str, name: str, number: str) -> None:
        manager = self.bridge.deployments
        record = await self.call(manager.version, self.caller, owner, name, number)
        n = int(record["number"])

        async def state() -> str:
            return manager.version_state(owner, name, n)

        await self.stream_log(self.bridge.layout.endpoint_log(owner, name, n), lambda: manager.live_log(owner, name, n),
                              state)


class KeyListHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json({"items": await self.call(self.bridge.deployments.list_keys, self.caller, owner, name)})

    async def post(self, owner: str, name: str) -> None:
        body = self.json_body()
        self.write_json(await self.call(self.bridge.deployments.create_key, self.caller, owner, name, body), 201)


class KeyHandler(BaseHandler):
    async def delete(self, owner: str, name: str, key_id: str) -> None:
        self.write_json(await self.call(self.bridge.deployments.revoke_key, self.caller, owner, name, key_id))


class TrafficHandler(BaseHandler):
    """``PUT …/traffic``: the split of unpinned requests between ready versions (``{}`` ends it)."""

    async def put(self, owner: str, name: str) -> None:
        body = self.json_body()
        try:
            self.write_json(await self.bridge.deployments.set_traffic(self.caller, owner, name, body))
        except FloydError as exc:
            raise to_http(exc) from None


class PromoteHandler(BaseHandler):
    async def post(self, owner: str, name: str) -> None:
        body = self.json_body()
        try:
            self.write_json(await self.bridge.deployments.promote(self.caller, owner, name, body))
        except FloydError as exc:
            raise to_http(exc) from None


class RollbackHandler(BaseHandler):
    async def post(self, owner: str, name: str) -> None:
        body = self.json_body()
        try:
            self.write_json(await self.bridge.deployments.rollback(self.caller, owner, name, body))
        except FloydError as exc:
            raise to_http(exc) from None


class EndpointMetricsHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        minutes = bounded_number(self.raw_argument("minutes") or "60", "minutes", 1, MAX_MINUTES)
        since = time.time() - minutes * 60
        self.write_json(await self.call(self.bridge.deployments.metrics, self.caller, owner, name, since))


default_handlers = [
    ("/api/v1/endpoints", EndpointListHandler),
    ("/api/v1/endpoints/{owner}/{name}", EndpointHandler),
    ("/api/v1/endpoints/{owner}/{name}/versions", VersionListHandler),
    ("/api/v1/endpoints/{owner}/{name}/versions/{number}", VersionHandler),
    ("/api/v1/endpoints/{owner}/{name}/versions/{number}/stop", VersionStopHandler),
    ("/api/v1/endpoints/{owner}/{name}/versions/{number}/logs", VersionLogsHandler),
    ("/api/v1/endpoints/{owner}/{name}/keys", KeyListHandler),
    ("/api/v1/endpoints/{owner}/{name}/keys/{key_id}", KeyHandler),
    ("/api/v1/endpoints/{owner}/{name}/metrics", EndpointMetricsHandler),
    ("/api/v1/endpoints/{owner}/{name}/traffic", TrafficHandler),
    ("/api/v1/endpoints/{owner}/{name}/promote", PromoteHandler),
    ("/api/v1/endpoints/{owner}/{name}/rollback", RollbackHandler),
]
