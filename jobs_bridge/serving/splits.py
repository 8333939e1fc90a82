"""Traffic splits between versions of one endpoint: set a split, promote a version, roll a
canary back (by hand, or by itself when its error rate passes the endpoint's threshold).

The split lives on the endpoints row (JSON) and on the router's LiveEndpoint, which the proxy
reads per request (serving/traffic.py picks). Versions leave a split by draining: requests
already relayed to them finish.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import BadRequest, Conflict, NotFound
from jobs_bridge.orm import Endpoint
from jobs_bridge.serving import traffic
from jobs_bridge.serving.common import VersionLogs
from jobs_bridge.serving.rollout import Rollout
from jobs_bridge.serving.router import READY, LiveEndpoint, Router
from jobs_bridge.serving.tasks import TaskRunner
from jobs_bridge.validate import only_keys, whole_number

log = logging.getLogger("jobs_bridge.serving")
VERSION_RE = re.compile(r"v?(\d{1,9})")
Find = Callable[[Session, Caller, str, str], Endpoint]


def parse_split(raw: object) -> dict[int, int]:
    """``{"v3": 10, "2": 90}`` → ``{3: 10, 2: 90}``: weights, kept as percentages of their sum
    (``{"3": 1, "2": 1}`` is 50/50); ``{}`` (or only zeros) ends the split."""
    if not isinstance(raw, dict):
        raise BadRequest("'split' must be an object of version → percent, such as {\"3\": 10, \"2\": 90}.")
    split: dict[int, int] = {}
    for key, weight in raw.items():
        m = VERSION_RE.fullmatch(str(key))
        if m is None:
            raise BadRequest(f"Invalid version {key!r} in the split: use a number such as 3 (or v3).")
        split[int(m.group(1))] = whole_number(weight, f"percent of v{m.group(1)}", 0, 100)
    return traffic.percent(split)


class Splits:
    """The split's writer: the API's traffic, promote and rollback calls, and the auto-rollback."""

    def __init__(self, sessions: sessionmaker[Session], router: Router, rollout: Rollout, logs: VersionLogs,
                 tasks: TaskRunner, find: Find) -> None:
        self.sessions = sessions
        self.router = router
        self.rollout = rollout
        self.logs = logs
        self.tasks = tasks
        self.find = find

    def _live(self, caller: Caller, owner: str, name: str) -> LiveEndpoint:
        with self.sessions() as s:
            self.find(s, caller, owner, name)  # 404 before anything about the body
        live = self.router.endpoint(owner, name)
        if live is None:
            raise NotFound(f"Endpoint {owner}/{name} not found.")
        return live

    def _store(self, live: LiveEndpoint, split: dict[int, int]) -> None:
        with self.sessions.begin() as s:
            row = s.get(Endpoint, live.id)
            if row is not None:
                row.traffic = json.dumps({str(n): w for n, w in split.items()})
        live.split_base = {n: (v.stats.requests, v.stats.classes["5xx"]) for n in split
                           if (v := live.versions.get(n)) is not None}
        live.split = split
        self.router.changed()

    def _ready(self, live: LiveEndpoint, number: int) -> None:
        v = live.versions.get(number)
        if v is None:
            raise NotFound(f"Endpoint {live.owner}/{live.name} has no version {number}.")
        if v.state != READY:
            raise Conflict(f"v{number} of {live.owner}/{live.name} is {v.state}; only ready versions take traffic "
                           f"(deploy it again with `floyd deploy {live.name}`).")

    async def set_split(self, caller: Caller, owner: str, name: str, body: dict) -> dict[int, int]:
        live = await self.tasks.run(self._live, caller, owner, name)
        only_keys(body, {"split"})
        if "split" not in body:
            raise BadRequest("Give 'split': version → percent, such as {\"3\": 10, \"2\": 90} ({} ends the split).")
        split = parse_split(body["split"])
        for number in split:
            self._ready(live, number)
        await self.tasks.run(self._store, live, split)
        for number in split:
            self._note(live, number, "traffic split: " + self.describe(split))
        return split

    async def promote(self, caller: Caller, owner: str, name: str, body: dict) -> int:
        """``version`` takes all unpinned traffic; every other ready version drains and stops."""
        live = await self.tasks.run(self._live, caller, owner, name)
        only_keys(body, {"version"})
        if "version" not in body:
            raise BadRequest(f"Give 'version': the version of {owner}/{name} to promote, such as 3.")
        number = self._number(body["version"], live)
        self._ready(live, number)
        await self.tasks.run(self._store, live, {})
        self._note(live, number, "promoted: it takes all unpinned traffic")
        for v in list(live.versions.values()):
            if v.number != number and v.state == READY:
                self.tasks.spawn(self.rollout.retire(live, v, f"v{number} was promoted", drain=True))
        return number

    async def rollback(self, caller: Caller, owner: str, name: str, body: dict) -> int:
        live = await self.tasks.run(self._live, caller, owner, name)
        only_keys(body, {"version"})
        number = self._number(body["version"], live) if body.get("version") is not None else traffic.canary(live.split)
        if number is None or number not in live.split:
            raise Conflict(f"{owner}/{name} has no traffic split to roll back"
                           + (f" (v{number} takes no share)" if number is not None else "")
                           + f"; set one with `floyd endpoint traffic {name} vNEW=10 vOLD=90`.")
        await self.leave(live, number, "rolled back by request")
        return number

    async def leave(self, live: LiveEndpoint, number: int, reason: str) -> None:
        """``number`` leaves the split (the rest scaled to 100) and drains, then stops."""
        await self.tasks.run(self._store, live, traffic.without(live.split, number))
        v = live.versions.get(number)
        if v is not None and v.state == READY:
            self._note(live, number, reason)
            self.tasks.spawn(self.rollout.retire(live, v, reason, drain=True))

    def _number(self, value: object, live: LiveEndpoint) -> int:
        m = VERSION_RE.fullmatch(str(value)) if value is not None else None
        if m is None:
            raise BadRequest(f"'version' must name a version of {live.owner}/{live.name}, such as 3 (or v3).")
        return int(m.group(1))

    def _note(self, live: LiveEndpoint, number: int, line: str) -> None:
        v = live.versions.get(number)
        logs = self.logs.get(v.id) if v else None
        if logs is not None and not logs.complete:
            logs.append([f"[floyd] v{number}: {line}"])

    @staticmethod
    def describe(split: dict[int, int]) -> str:
        return " ".join(f"v{n}={w}%" for n, w in sorted(split.items(), reverse=True)) or "none"
