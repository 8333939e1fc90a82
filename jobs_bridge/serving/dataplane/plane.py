"""The DataPlane: starts HAProxy on the bridge's port and keeps its tables in step with the bridge.

Every ``sync_interval`` (and at once after a key change, a wrong key, or before a replica stops)
it turns the routing table into HAProxy's maps and servers, reads HAProxy's in-flight counts back
into the versions' counters (the autoscaler and the drains see every request, wherever it was
proxied) and frees what finished retiring. A route is taken away before its replicas stop, and
``quiesce`` waits until HAProxy has nothing in flight there: no request is dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tornado import netutil
from tornado.httpserver import HTTPServer
from traitlets import Enum, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.endpoint_gate import EndpointGate
from jobs_bridge.auth.endpoint_keys import KeyStore
from jobs_bridge.serving.dataplane import config, desired
from jobs_bridge.serving.dataplane.access_log import AccessLog
from jobs_bridge.serving.dataplane.haproxy import HAProxyProcess, RuntimeError_
from jobs_bridge.serving.dataplane.slots import SlotTable
from jobs_bridge.serving.router import LiveVersion, Replica, Router

log = logging.getLogger("jobs_bridge.serving.dataplane")


class DataPlane(LoggingConfigurable):
    """``c.DataPlane``: HAProxy as the endpoints' data plane (docs/serving.md, "Proxy")."""

    enabled = Enum(
        ["auto", "on", "off"], "auto", help="Put HAProxy in front of the bridge to answer endpoint requests: "
        "'auto' when the haproxy executable is found, 'on' (the bridge refuses to start without it) or 'off' "
        "(the bridge's own proxy answers every request, at about a quarter of the throughput).",
    ).tag(config=True)
    haproxy = Unicode("haproxy", help="The haproxy executable (2.6 or newer), a name on PATH or a path.").tag(config=True)
    slots = Integer(
        64, help="Endpoint versions HAProxy can answer for at once; the bridge answers for the others.",
    ).tag(config=True)
    servers_per_slot = Integer(
        16, help="Ready replicas of one version HAProxy can spread requests over; a version with more is "
        "answered by the bridge.",
    ).tag(config=True)
    replica_maxconn = Integer(
        64, help="Requests at once HAProxy sends to one replica; more wait in HAProxy's queue (and count as "
        "in flight for the autoscaler).",
    ).tag(config=True)
    sync_interval = Float(
        0.1, help="Seconds between two syncs of HAProxy's tables and reads of its in-flight counts.",
    ).tag(config=True)

    def __init__(self, router: Router, keys: KeyStore, gate: EndpointGate, state: Path, ip: str, port: int,
                 prefix: str, max_body: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.router, self.keys, self.gate = router, keys, gate
        self.state, self.ip, self.port, self.prefix, self.max_body = state, ip, port, prefix, max_body
        self.table = SlotTable(self.slots, self.servers_per_slot)
        self.proc: HAProxyProcess | None = None
        self.access = AccessLog(router, keys, lambda slot: self.table.version_of(slot))
        self._lock = threading.RLock()
        self._routes: dict[str, str] = {}  # owner/name → "key:slotN" / "public:slotN" as applied
        self._keys: dict[str, str] = {}
        self._locked: set[str] = set()
        self._keep: set[int] = set()  # versions routed at the last sync
        self._keys_seen: tuple[int, int] = (-1, -1)  # (key store generation, endpoints) at the last key sync
        self._keys_at = 0.0
        self._task: asyncio.Task | None = None
        self.shape: config.Shape | None = None
        self._warned = False

    def wanted(self) -> bool:
        """Whether to run HAProxy; raises SystemExit-worthy ValueError when 'on' and not found."""
        if self.enabled == "off":
            return False
        found = shutil.which(self.haproxy) is not None
        if not found and self.enabled == "on":
            raise ValueError(f"c.DataPlane.enabled is 'on' but {self.haproxy!r} was not found "
                             "(install it: scripts/ensure-system.sh haproxy)")
        if not found:
            log.warning("haproxy not found: the bridge's own proxy answers endpoint requests "
                        "(install haproxy for about four times the throughput; docs/serving.md)")
        return found

    # -- life --------------------------------------------------------------------------------
    async def listen(self, server: HTTPServer) -> bool:
        """Serve on ``ip:port``: through HAProxy (True) with ``server`` behind it on a loopback
        port, or ``server`` itself (False) when HAProxy is off or missing."""
        if not self.wanted():
            server.listen(self.port, self.ip)
            return False
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        await self.start(int(sockets[0].getsockname()[1]))
        return True

    async def start(self, bridge_port: int) -> None:
        """Start HAProxy on ``ip:port`` in front of the bridge on ``bridge_port``."""
        log_port = await self.access.listen()
        self.shape = shape = config.Shape(self.state, self.ip, self.port, bridge_port, self.prefix, self.slots,
                             self.servers_per_slot, self.replica_maxconn, self.gate.by_address.forwarded_hops,
                             log_port=log_port)
        path = config.write(shape)
        self.proc = HAProxyProcess(self.haproxy, path, self.state)
        await asyncio.to_thread(self.proc.start)
        self.keys.listeners.append(self.sync_now)
        self.router.changed = self.sync_now
        self.gate.on_failure = self.sync_now
        self._task = asyncio.ensure_future(self._loop())
        log.info("HAProxy answers endpoint requests on %s:%d (bridge behind it on 127.0.0.1:%d)", self.ip, self.port,
                 bridge_port)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.sync_now in self.keys.listeners:
            self.keys.listeners.remove(self.sync_now)
        if self.proc is not None:
            await asyncio.to_thread(self.proc.stop)
        self.access.close()
        if self.proc is None or not self.proc.running():
            # a clean stop leaves nothing behind (a crash leaves the pid file the next start reads)
            await asyncio.to_thread(shutil.rmtree, self.state, True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                if self.proc is not None and not self.proc.running():
                    await self._restart()
                self.sync()
            except RuntimeError_ as exc:
                log.warning("Data plane sync: %s", exc)
            except Exception:
                log.exception("Data plane sync failed")

    async def _restart(self) -> None:
        """HAProxy died: start a new one with empty tables (the next sync fills them again)."""
        assert self.proc is not None
        log.error("HAProxy exited (status %s); starting it again: %s", self.proc.proc.returncode if self.proc.proc
                  else "?", self.proc.tail())
        with self._lock:
            assert self.shape is not None
            config.write(self.shape)
            self.table = SlotTable(self.slots, self.servers_per_slot)
            self._routes, self._keys, self._locked, self._keep = {}, {}, set(), set()
            self._keys_seen = (-1, -1)
        await asyncio.to_thread(self.proc.start)

    # -- sync --------------------------------------------------------------------------------
    def sync(self) -> None:
        """One pass: routes, keys and locks to HAProxy; in-flight counts back; retired servers freed."""
        with self._lock:
            cmds = self._route_commands()
            cmds += self._key_commands()
            cmds += self._lock_commands()
            if cmds and self.proc is not None:
                self.proc.apply(cmds)
            self._read_load()

    def sync_now(self) -> None:
        """A sync now, from whichever thread made the change (its error logged, not raised)."""
        try:
            self.sync()
        except RuntimeError_ as exc:
            log.warning("Data plane sync: %s", exc)

    def _route_commands(self) -> list[str]:
        locked = set(self.gate.by_endpoint.locked())
        want = desired.routes(self.router, self.servers_per_slot, self.max_body, locked)
        cmds: list[str] = []
        routed: dict[str, str] = {}
        keep: set[int] = set()
        for name, r in want.items():
            slot = self.table.slot(r.version.id)
            if slot is None:
                if not self._warned:
                    log.warning("All %d data plane slots are in use; the bridge answers %s itself", self.slots, name)
                    self._warned = True
                continue
            keep.add(r.version.id)
            meta = (r.token, r.max_body, r.timeout_ms)
            if slot.meta != meta:
                cmds += self._set_map("tokens", slot.name, r.token, slot.meta is not None)
                cmds += self._set_map("maxbody", slot.name, str(r.max_body), slot.meta is not None)
                cmds += self._set_map("timeouts", slot.name, str(r.timeout_ms or 86_400_000), slot.meta is not None)
                slot.meta = meta
            cmds += self.table.place(slot, r.servers)
            if slot.active():
                routed[name] = f"{'public' if r.public else 'key'}:{slot.name}"
        for name, value in routed.items():
            if self._routes.get(name) != value:
                cmds += self._set_map("routes", name, value, name in self._routes)
        for name in set(self._routes) - set(routed):
            cmds.append(f"del map {self.state}/routes.map {name}")
        # versions no longer routed: their servers retire (after the route is gone, in this batch)
        for vid, slot in list(self.table.by_version.items()):
            if vid not in keep:
                cmds += self.table.retire_all(slot)
        self._routes = routed
        self._keep = keep
        return cmds

    def _key_commands(self, force: bool = False) -> list[str]:
        # Every key is looked at only when keys or endpoints changed, or once a second (expiries).
        seen = (self.keys.generation, len(self.router.endpoints))
        if not force and seen == self._keys_seen and time.monotonic() - self._keys_at < 1.0:
            return []
        self._keys_seen, self._keys_at = seen, time.monotonic()
        want = desired.keys(self.keys.grants(), self.router, margin=2 * self.sync_interval + 1)
        cmds = [f"del map {self.state}/keys.map {h}" for h in set(self._keys) - set(want)]
        for h, name in want.items():
            if self._keys.get(h) != name:
                cmds += self._set_map("keys", h, name, h in self._keys)
        self._keys = want
        return cmds

    def _lock_commands(self) -> list[str]:
        want = set(self.gate.by_address.locked())
        cmds = [f"del map {self.state}/locked.map {a}" for a in self._locked - want]
        cmds += [f"add map {self.state}/locked.map {a} 1" for a in want - self._locked if " " not in a and ";" not in a]
        self._locked = want
        return cmds

    def _set_map(self, name: str, key: str, value: str, exists: bool) -> list[str]:
        verb = "set" if exists else "add"
        return [f"{verb} map {self.state}/{name}.map {key} {value}"]

    def _read_load(self) -> None:
        """HAProxy's in-flight and queued requests into the versions' and replicas' counters."""
        if self.proc is None or not self.table.by_version:
            return
        load = self.proc.server_load([config.slot_id(i) for i in self.table.indexes()])
        for vid, slot in self.table.by_version.items():
            lv = self.router.by_version.get(vid)
            if lv is None:
                continue
            busy = self.table.busy(slot, load)
            queued = load.get((slot.name, "BACKEND"), (0, 0))[1]
            lv.stats.outside = sum(busy.values()) + queued
            for r in lv.replicas:
                r.outside = busy.get((r.host, r.port), 0)
        self.table.settle(load, self._keep)

    # -- drains ------------------------------------------------------------------------------
    async def quiesce(self, lv: LiveVersion, replicas: list[Replica], timeout: float) -> None:
        """Take these replicas (already not ready) out of HAProxy and wait, up to ``timeout``
        seconds, until nothing HAProxy sent them is still in flight."""
        if self.proc is None:
            return
        addresses = {(r.host, r.port) for r in replicas}
        deadline = time.monotonic() + timeout
        while True:
            try:
                await asyncio.to_thread(self.sync)
            except RuntimeError_ as exc:
                log.warning("Data plane drain of v%s: %s", lv.number, exc)
                return
            slot = self.table.by_version.get(lv.id)
            if slot is None or not addresses & {a for a in slot.servers if a is not None}:
                return
            if time.monotonic() > deadline:
                log.warning("v%s: HAProxy still has requests in flight to %s after %g s; stopping anyway",
                            lv.number, sorted(addresses), timeout)
                return
            await asyncio.sleep(0.05)


def dataplane_state(root: Path, create: bool = True) -> Path:
    """HAProxy's directory: stable per storage root (its pid file finds an orphan of a crashed
    bridge) and short, since a unix socket's path has at most 107 bytes. Removed at a clean stop."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"floyd-dataplane-{digest}"
    if create:
        path.mkdir(mode=0o700, exist_ok=True)
    return path
