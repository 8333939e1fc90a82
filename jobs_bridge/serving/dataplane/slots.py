"""Which HAProxy slot (backend) holds which endpoint version, and which server holds which replica.

Pure bookkeeping, turned into runtime API commands: a slot's servers are *active* (taking
requests), *retiring* (in maintenance, finishing what they have) or free. A server is reused and
a slot given to another version only once HAProxy says nothing is in flight there, and freed
slots go to the back of the line, so a late log line is never counted for the wrong version.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

Address = tuple[str, int]


@dataclass
class Slot:
    index: int
    version_id: int = 0
    servers: list[Address | None] = field(default_factory=list)  # by server index (r1 = 0)
    retiring: set[int] = field(default_factory=set)
    meta: tuple[str, int, int] | None = None  # token, max body, timeout ms as applied

    @property
    def name(self) -> str:
        return f"slot{self.index}"

    def active(self) -> dict[Address, int]:
        return {a: i for i, a in enumerate(self.servers) if a is not None and i not in self.retiring}

    def idle(self) -> bool:
        return not any(a is not None for a in self.servers)


class SlotTable:
    def __init__(self, slots: int, servers: int) -> None:
        self.servers = servers
        self.free: deque[int] = deque(range(slots))
        self.by_version: dict[int, Slot] = {}
        self.by_index: dict[int, Slot] = {}

    def slot(self, version_id: int) -> Slot | None:
        """The version's slot, a free one taken for it, or None when all are in use."""
        s = self.by_version.get(version_id)
        if s is None and self.free:
            s = Slot(self.free.popleft(), version_id, [None] * self.servers)
            self.by_version[version_id] = s
            self.by_index[s.index] = s
        return s

    def version_of(self, index: int) -> int | None:
        s = self.by_index.get(index)
        return s.version_id if s else None

    def place(self, s: Slot, wanted: tuple[Address, ...]) -> list[str]:
        """Commands that make ``wanted`` the slot's active servers (new ones ready, gone ones to
        maintenance, where they finish their requests)."""
        cmds = []
        active = s.active()
        for address, i in active.items():
            if address not in wanted:
                s.retiring.add(i)
                cmds.append(f"set server {s.name}/r{i + 1} state maint")
        for address in wanted:
            if address in active:
                continue
            free = next((i for i, a in enumerate(s.servers) if a is None), None)
            if free is None:
                continue  # every server busy retiring: the route waits for the next sync
            i = free
            s.servers[i] = address
            cmds.append(f"set server {s.name}/r{i + 1} addr {address[0]} port {address[1]}")
            cmds.append(f"set server {s.name}/r{i + 1} state ready")
        return cmds

    def retire_all(self, s: Slot) -> list[str]:
        return self.place(s, ())

    def settle(self, load: dict[tuple[str, str], tuple[int, int]], keep: set[int]) -> None:
        """Free the retiring servers with nothing in flight or queued, and the slots left empty
        whose version is no longer routed (not in ``keep``)."""
        for s in list(self.by_version.values()):
            for i in list(s.retiring):
                if load.get((s.name, f"r{i + 1}"), (0, 0)) == (0, 0):
                    s.retiring.discard(i)
                    s.servers[i] = None
            if s.version_id not in keep and s.idle() and load.get((s.name, "BACKEND"), (0, 0))[1] == 0:
                del self.by_version[s.version_id]
                del self.by_index[s.index]
                self.free.append(s.index)

    def busy(self, s: Slot, load: dict[tuple[str, str], tuple[int, int]]) -> dict[Address, int]:
        """In flight + queued per replica address of the slot (retiring ones included)."""
        return {a: sum(load.get((s.name, f"r{i + 1}"), (0, 0))) for i, a in enumerate(s.servers) if a is not None}

    def indexes(self) -> list[int]:
        return sorted(s.index for s in self.by_version.values())
