"""Live, persisted logs over server-sent events, shared by jobs and endpoint versions.

Every line from the start (or after ``Last-Event-ID``), then the live tail, then
``event: end``; line numbers are event ids, so a reconnecting EventSource resumes exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from tornado.iostream import StreamClosedError

from jobs_bridge.errors import FloydError
from jobs_bridge.handlers.base import BaseHandler, to_http
from jobs_bridge.jobs.logs import END, LogStore


async def never_live() -> LogStore | None:
    return None


class LogStreamMixin(BaseHandler):
    """For handlers: ``await self.stream_log(path, live, state)``."""

    _queue: asyncio.Queue | None = None

    def on_connection_close(self) -> None:
        """A follower that went away stops waiting for the next line now (and frees its place
        among the user's followers), not when the job next prints."""
        if self._queue is not None:
            self._queue.put_nowait(END)
        super().on_connection_close()

    async def stream_log(self, path: Path, live: Callable[[], LogStore | None], state: Callable[[], Awaitable[str]],
                         wait_live: Callable[[], Awaitable[LogStore | None]] = never_live) -> None:
        """``live()`` is the store being written now (None when nothing runs); ``wait_live()``
        waits for one to start (None if it ended without one); ``state()`` goes in ``end``."""
        if not self.flag_argument("follow"):
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            if path.exists():
                self.write(await self.call(path.read_bytes))
            self.finish()
            return
        user = self.caller.name
        try:
            self.bridge.followers.acquire(user)  # each open stream holds a connection and a queue
        except FloydError as exc:
            raise to_http(exc) from None
        try:
            await self._stream(path, live, state, wait_live)
        finally:
            self.bridge.followers.release(user)

    async def _stream(self, path: Path, live: Callable[[], LogStore | None], state: Callable[[], Awaitable[str]],
                      wait_live: Callable[[], Awaitable[LogStore | None]]) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        queue: asyncio.Queue = asyncio.Queue()
        self._queue = queue
        store = live()
        if store is not None:
            store.followers.add(queue)
        try:
            last = self.request.headers.get("Last-Event-ID", "")
            sent = await self._send_file(path, int(last) + 1 if last.isascii() and last.isdigit() else 0)
            if store is None or store.complete:
                if store is None:
                    # Not started yet: wait until it is, then follow it from where the file is now
                    # (lines logged before we subscribed are in the file).
                    store = await wait_live()
                    if store is not None:
                        store.followers.add(queue)
                        sent = await self._send_file(path, sent)
                if store is None or store.complete:
                    await self._end(state)
                    return
            await self._follow(queue, sent)
            await self._end(state)
        except StreamClosedError:
            pass
        finally:
            if store is not None:
                store.followers.discard(queue)

    async def _send_file(self, path: Path, sent: int) -> int:
        """Send the file's complete lines from line ``sent`` on; return the next line number."""
        if not path.exists():
            return sent
        lines = await self.call(read_complete_lines, path)
        await self._send(lines[sent:], sent)
        return max(sent, len(lines))

    async def _follow(self, queue: asyncio.Queue, sent: int) -> None:
        """Send the live tail (``(first line number, lines)`` items) until END arrives."""
        ended = False
        while not ended:
            items = [await queue.get()]
            while not queue.empty():  # coalesce whatever piled up into one write
                items.append(queue.get_nowait())
            batch: list[str] = []
            for item in items:
                if item is END:
                    ended = True
                    break
                first, new = item
                if first + len(new) <= sent:
                    continue
                batch.extend(new[max(0, sent - first):])
                sent = first + len(new)
            await self._send(batch, sent - len(batch))

    async def _send(self, lines: list[str], first: int) -> None:
        if not lines:
            return
        self.write("".join(f"id: {first + i}\ndata: {line}\n\n" for i, line in enumerate(lines)))
        await self.flush()

    async def _end(self, state: Callable[[], Awaitable[str]]) -> None:
        self.write(f"event: end\ndata: {json.dumps({'state': await state()})}\n\n")
        await self.flush()
        self.finish()


def read_complete_lines(path: Path) -> list[str]:
    """Complete lines only: a line being appended right now arrives through the queue."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return text.split("\n")[:-1]
