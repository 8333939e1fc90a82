"""Who is asking: how the credentials of a request become a :class:`Caller`.

Three kinds of callers reach the bridge: Hub users (token or OAuth cookie, checked by
JupyterHub through HubAuth), a running job with its own ``fjt_…`` token (which reaches only
that job's routes), and Hub services; the spawner service acts on a user's behalf.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jupyterhub.services.auth import HubAuthenticated, UserNotAllowed

from jobs_bridge.auth.tokens import JOB_TOKEN_PREFIX
from jobs_bridge.errors import BadRequest, Forbidden, Unauthorized, Unavailable
from jobs_bridge.names import check_owner
from jobs_bridge.validate import json_bool

if TYPE_CHECKING:
    from jobs_bridge.orm import Job

log = logging.getLogger("jobs_bridge.auth")

LOGIN_HINT = (
    "Authentication required: run `floyd login URL`, or send 'Authorization: token <JupyterHub API token>'."
)


@dataclass(frozen=True)
class Caller:
    """The user every permission check is about (a job acts as its owner, never as admin)."""

    name: str
    admin: bool = False


@dataclass(frozen=True)
class Identity:
    """What one request's credentials resolved to, settled before the handler runs."""

    hub_user: dict[str, Any] | None = None  # JupyterHub's model of the user or service
    job: Job | None = None  # the job whose own token was sent

    def caller(self, admin_services: Collection[str]) -> Caller:
        """The caller, or 401 with the hint that tells how to log in."""
        if self.job is not None:
            return Caller(name=self.job.owner, admin=False)
        user = self.hub_user
        if not user:
            raise Unauthorized(LOGIN_HINT)
        if user.get("kind") == "service":
            # Only the services an admin named (the workspace spawner) act with admin rights.
            return Caller(name=f"service-{user['name']}", admin=user["name"] in admin_services)
        return Caller(name=user["name"], admin=bool(user.get("admin")))


JobLookup = Callable[[str], Awaitable["Job | None"]]


async def identify(handler: HubAuthenticated, authorization: str, *, allow_job_token: bool,
                   job_by_token: JobLookup) -> Identity:
    """Resolve a request without blocking the loop (HubAuth caches what the Hub answers)."""
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() in ("token", "bearer") and credential.startswith(JOB_TOKEN_PREFIX):
        # A job's own token (``bearer`` is how the MLflow client sends it): it reaches that job's
        # routes and nothing else.
        if not allow_job_token:
            raise Forbidden("A job's token cannot be used for this; it only reports the job's metrics and "
                            "MLflow tracking.")
        job = await job_by_token(credential)
        if job is None:
            raise Unauthorized("This job token is not valid (the job has ended).")
        return Identity(job=job)
    try:
        model = await handler.hub_auth.get_user(handler, sync=False)
    except Exception:
        log.exception("Asking JupyterHub who this is failed")
        raise Unavailable("JupyterHub did not answer; try again shortly.") from None
    if not model:
        return Identity()
    try:
        return Identity(hub_user=handler.check_hub_user(model))
    except UserNotAllowed:
        raise Forbidden(f"{model.get('name')} may not use the Floyd service.") from None


def acting_as(caller: Caller, user: object) -> Caller:
    """Services (the spawner) act for a user, sent as {'name', 'admin'}; a user only as themselves."""
    if user is None:
        return caller
    if not isinstance(user, dict) or not isinstance(user.get("name"), str):
        raise BadRequest("'user' must be {'name': ..., 'admin': ...}.")
    name = check_owner(user["name"])
    if caller.admin:
        return Caller(name=name, admin=json_bool(user.get("admin", False), "user.admin"))
    if name != caller.name:
        raise Forbidden("You can only prepare your own workspaces.")
    return caller
