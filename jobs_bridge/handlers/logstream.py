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

from jobs_bridge.handlers.datasets import flag
from jobs_bridge.jobs.logs import END, LogStore


async def never_live() -> LogStore | None:
    return None


class LogStreamMixin:
    """For BaseHandler subclasses: ``await self.stream_log(path, live, state)``."""

    async def stream_log(self, path: Path, live: Callable[[], LogStore | None], state: Callable[[], Awaitable[str]],
                         wait_live: Callable[[], Awaitable[LogStore | None]] = never_live) -> None:
        """``live()`` is the store being written now (None when nothing runs); ``wait_live()``
        waits for one to start (None if it ended without one); ``state()`` goes in ``end``."""
        handler = self  # type: ignore[assignment]
        if not flag(handler.get_argument("follow", None)):  # type: ignore[attr-defined]
            handler.set_header("Content-Type", "text/plain; charset=utf-8")  # type: ignore[attr-defined]
            if path.exists():
                handler.write(await handler.call(path.read_bytes))  # type: ignore[attr-defined]
            handler.finish()  # type: ignore[attr-defined]
            return
        handler.set_header("Content-Type", "text/event-stream")  # type: ignore[attr-defined]
        handler.set_header("Cache-Control", "no-cache")  # type: ignore[attr-defined]
        handler.set_header("X-Accel-Buffering", "no")  # type: ignore[attr-defined]
        queue: asyncio.Queue = asyncio.Queue()
        store = live()
        if store is not None:
            store.followers.add(queue)
        try:
            last = handler.request.headers.get("Last-Event-ID", "")  # type: ignore[attr-defined]
            resume = int(last) + 1 if last.isdigit() else 0
            sent = resume
            if path.exists():
                lines = await handler.call(read_complete_lines, path)  # type: ignore[attr-defined]
                await self._send(lines[resume:], resume)
                sent = max(resume, len(lines))
            if store is None or store.complete:
                if store is None:
                    # Not started yet: wait until it is, then follow it from where the file is now
                    # (lines logged before we subscribed are in the file).
                    store = await wait_live()
                    if store is not None:
                        store.followers.add(queue)
                        if path.exists():
                            lines = await handler.call(read_complete_lines, path)  # type: ignore[attr-defined]
                            await self._send(lines[sent:], sent)
                            sent = max(sent, len(lines))
                if store is None or store.complete:
                    await self._end(state)
                    return
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
                    fresh = new[max(0, sent - first):]
                    batch.extend(fresh)
                    sent = first + len(new)
                await self._send(batch, sent - len(batch))
            await self._end(state)
        except StreamClosedError:
            pass
        finally:
            if store is not None:
                store.followers.discard(queue)

    async def _send(self, lines: list[str], first: int) -> None:
        if not lines:
            return
        self.write("".join(f"id: {first + i}\ndata: {line}\n\n" for i, line in enumerate(lines)))  # type: ignore[attr-defined]
        await self.flush()  # type: ignore[attr-defined]

    async def _end(self, state: Callable[[], Awaitable[str]]) -> None:
        self.write(f"event: end\ndata: {json.dumps({'state': await state()})}\n\n")  # type: ignore[attr-defined]
        await self.flush()  # type: ignore[attr-defined]
        self.finish()  # type: ignore[attr-defined]


def read_complete_lines(path: Path) -> list[str]:
    """Complete lines only: a line being appended right now arrives through the queue."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return text.split("\n")[:-1]
