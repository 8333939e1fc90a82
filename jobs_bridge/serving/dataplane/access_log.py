"""HAProxy's access log, read back as the endpoint versions' request metrics.

HAProxy writes one line per request a slot answered (``slotN rM STATUS MICROSECONDS TERM KEYHASH``)
into a ring buffer that it forwards over a TCP connection to the bridge; a burst waits in the
ring (8 MiB) instead of being dropped, so the counts stay exact. Each line becomes the same
``VersionStats.record`` call the bridge's own proxy makes, and marks the key as used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from jobs_bridge.auth.endpoint_keys import KeyStore
from jobs_bridge.serving.router import Router

log = logging.getLogger("jobs_bridge.serving.dataplane")
FAILED = frozenset((502, 503, 504))
GATHER_S = 0.02  # at most this late, the access log's lines reach the metrics
GATHER_BELOW = 1 << 15  # a read shorter than this waited for lines: let the next ones gather first


class AccessLog:
    def __init__(self, router: Router, keys: KeyStore, version_of: Callable[[int], int | None]) -> None:
        self.router, self.keys, self.version_of = router, keys, version_of  # version_of: slot → version id
        self.server: asyncio.Server | None = None
        self.lines = 0

    async def listen(self) -> int:
        """Listen on a free loopback port (kept across HAProxy restarts); the port."""
        if self.server is None:
            self.server = await asyncio.start_server(self._reader, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _reader(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rest = b""
        try:
            while chunk := await reader.read(1 << 16):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                self.record(lines)
                if len(chunk) < GATHER_BELOW:
                    # HAProxy sends the lines about as they come: under load, one wake-up of the
                    # event loop per request. Waiting a moment lets them gather in the socket (and
                    # the ring behind it) and be read a few hundred at once; the metrics lag by it.
                    await asyncio.sleep(GATHER_S)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def record(self, lines: list[bytes]) -> None:
        version_of, by_version, keys = self.version_of, self.router.by_version, self.keys
        now = time.time()
        for line in lines:
            parts = line.split()
            if len(parts) < 5 or not parts[0].startswith(b"slot"):
                continue
            try:
                slot, status, micros = int(parts[0][4:]), int(parts[2]), int(parts[3])
            except ValueError:
                continue
            self.lines += 1
            vid = version_of(slot)
            lv = by_version.get(vid) if vid is not None else None
            if lv is None:
                continue
            if status in FAILED and parts[4] != b"--":  # HAProxy's own answer: the replica gave none
                lv.stats.failed += 1
            lv.stats.record(status, max(micros, 1) / 1e6, now)
            if len(parts) > 5 and parts[5] != b"-":
                keys.mark_used(parts[5].decode())
