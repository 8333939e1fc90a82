"""``/api/v1/…/uploads``: resumable, deduplicated uploads (protocol in datasets/uploads.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.ioloop import IOLoop

from jobs_bridge.auth.identity import Caller
from jobs_bridge.bodylimit import DRAIN_BYTES
from jobs_bridge.errors import BadRequest, FloydError, TooLarge, translate
from jobs_bridge.handlers.base import ApiError, BaseHandler, to_http
from jobs_bridge.memtrim import release_memory

HANDOFF_BYTES = 1 << 20
TRIM_DELAY_S = 1.0
log = logging.getLogger("jobs_bridge.handlers")


class UploadStartHandler(BaseHandler):
    async def post(self, owner: str, name: str) -> None:
        body = self.json_body()
        if "version_id" in body and ("manifest" in body or "directories" in body):
            raise ApiError(400, "Send either 'manifest' (start an upload) or 'version_id' (is this tree still "
                                "that version?), not both.")
        if "version_id" in body:  # "is this tree still that version?"
            self.write_json(await self.call(self.bridge.upload_manager.same_version, self.caller, owner, name,
                                            body["version_id"]))
            return
        changes = "directories" in body  # only what changed since the version ``base`` (datasets/changed_dirs.py)
        if changes != ("base" in body) or (changes and ("manifest" in body or not isinstance(body["base"], dict))):
            raise ApiError(400, "Send either 'manifest' (every file) or 'directories' with the 'base' version "
                                "they changed from ({\"number\": …, \"version_id\": …}).")
        manifest = body.pop("directories") if changes else body.pop("manifest", None)
        entries = len(manifest) if isinstance(manifest, list) else 0
        status, result = await self.call(
            self.bridge.upload_manager.start, self.caller, owner, name, manifest,
            body.get("message", ""), body.get("allow_duplicate", False), body=self.request.body,
            base=body["base"] if changes else None,
        )
        self.write_json(result, status)
        del manifest, result
        self.request.body = b""  # the raw manifest too, before the trim
        # later, not before the client's next request (its commit, a few ms on): the collection
        # and the trim took 7 ms of a one-change commit
        IOLoop.current().call_later(TRIM_DELAY_S, release_memory, entries)


class UploadHandler(BaseHandler):
    async def get(self, upload_id: str) -> None:
        self.write_json(await self.call(self.bridge.upload_manager.status, self.caller, upload_id))

    async def delete(self, upload_id: str) -> None:
        await self.call(self.bridge.upload_manager.abort, self.caller, upload_id)
        self.set_status(204)
        self.finish()


class CommitHandler(BaseHandler):
    async def post(self, upload_id: str) -> None:
        self.write_json(await self.call(self.bridge.upload_manager.commit, self.caller, upload_id), 201)


class StreamingHandler(BaseHandler):
    """Feeds the request body to a receiver in the executor, chunk by chunk.

    An error in the middle (a blob that does not match its hash) is remembered and the rest
    of the body is drained, so the client gets a proper 4xx instead of a reset connection.
    """

    streaming_methods: tuple[str, ...] = ("POST", "PUT")
    receiver: Any = None
    pending: bytearray
    error: FloydError | None = None

    refused: ApiError | None = None
    body_received = False  # set once the whole body has reached finish_receiving()
    received = 0

    async def prepare(self) -> None:
        self.pending = bytearray()
        if self.request.method not in self.streaming_methods:
            await super().prepare()
            return
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)  # what tornado's HTTPServer gives every request
        # A refusal (no token, wrong offset, unknown upload, a body over max_request_bytes) is
        # answered after the body has been drained: answering first, or tornado's own limit,
        # would reset the connection, and the proxy would turn our JSON message into a bare 503.
        connection.set_max_body_size(self.bridge.upload_manager.max_request_bytes + DRAIN_BYTES)
        try:
            await super().prepare()
            length = self.request.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > self.bridge.upload_manager.max_request_bytes:
                raise self.too_large(int(length))
            self.receiver = await self.call(self.open_receiver, self.caller, **self.path_kwargs)
        except ApiError as exc:
            self.refused = exc

    def too_large(self, size: int | None) -> ApiError:
        limit = self.bridge.upload_manager.max_request_bytes
        return to_http(TooLarge(
            f"This request body is {f'{size} bytes' if size else f'over {limit} bytes'}; at most {limit} bytes are "
            "accepted in one request. Send a large file in parts (PUT …/blobs/<hash> with Upload-Offset) and "
            "small ones in several packs; the `floyd` client does."))

    def open_receiver(self, caller: Caller, *args: Any, **kwargs: Any) -> Any:
        """The receiver for this request's body (subclasses take the route's arguments)."""
        raise NotImplementedError

    async def data_received(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.bridge.upload_manager.max_request_bytes and self.refused is None:
            self.refused = self.too_large(None)  # chunked, with no Content-Length to refuse it by
            receiver, self.receiver = self.receiver, None
            if receiver is not None:
                await asyncio.get_running_loop().run_in_executor(self.bridge.executor, receiver.abort)
        if self.error is not None or self.receiver is None:
            return
        # The proxy hands over ~64 KiB at a time: gather 1 MiB before each trip to the executor
        # (one thread hop per chunk cost more CPU than hashing the bytes).
        self.pending += chunk
        if len(self.pending) >= HANDOFF_BYTES:
            await self._hand_off()

    async def _hand_off(self) -> None:
        data, self.pending = bytes(self.pending), bytearray()
        if not data or self.error is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.bridge.executor, self.receiver.write, data)
        except Exception as exc:  # a bad blob (4xx), or the disk filled up (507)
            mapped = translate(exc)
            if mapped is None:
                raise
            self.error = mapped
            try:
                await loop.run_in_executor(self.bridge.executor, self.receiver.abort)
            except Exception:  # what arrived before stays unrecorded: the client sends it again
                log.warning("Cleaning up after %s failed", mapped.log_message, exc_info=True)

    async def finish_receiving(self) -> dict:
        self.body_received = True
        if self.refused is not None:
            raise self.refused
        await self._hand_off()
        if self.error is not None:
            raise to_http(self.error)
        return await self.call(self.receiver.close)

    def finish(self, chunk: Any = None) -> Any:
        """Say ``Connection: close`` when answering before the body has been read (tornado's 405 for
        a method it does not know, an error in prepare for a method that does not stream):
        tornado then closes the connection without saying so, and the proxy, which keeps it
        alive, would send the next request down a closed socket and answer that one 503."""
        if not self.body_received and self._has_body():
            self.set_header("Connection", "close")
        return super().finish(chunk)

    def _has_body(self) -> bool:
        headers = self.request.headers
        return "Transfer-Encoding" in headers or headers.get("Content-Length", "0") not in ("", "0")

    def on_connection_close(self) -> None:
        if self.receiver is not None and not self._finished and self.error is None:
            self.bridge.executor.submit(self.receiver.abort)


@web.stream_request_body
class PackHandler(StreamingHandler):
    streaming_methods = ("POST",)

    def open_receiver(self, caller: Caller, upload_id: str) -> Any:
        return self.bridge.upload_manager.pack_receiver(caller, upload_id)

    async def post(self, upload_id: str) -> None:
        self.write_json(await self.finish_receiving())


@web.stream_request_body
class BlobHandler(StreamingHandler):
    streaming_methods = ("PUT",)

    def open_receiver(self, caller: Caller, upload_id: str, hash: str) -> Any:
        raw = self.request.headers.get("Upload-Offset", "0")
        try:
            offset = int(raw)
        except ValueError:
            raise BadRequest(f"Upload-Offset must be a whole number of bytes, not {raw!r}.") from None
        return self.bridge.upload_manager.part_writer(caller, upload_id, hash, offset)

    async def head(self, upload_id: str, hash: str) -> None:
        offset, size = await self.call(self.bridge.upload_manager.blob_offset, self.caller, upload_id, hash)
        self.set_header("Upload-Offset", str(offset))
        self.set_header("Upload-Length", str(size))
        self.finish()

    async def put(self, upload_id: str, hash: str) -> None:
        result = await self.finish_receiving()
        self.set_header("Upload-Offset", str(result["offset"]))
        self.write_json(result)


default_handlers = [
    ("/api/v1/datasets/{owner}/{name}/uploads", UploadStartHandler),
    ("/api/v1/uploads/{upload_id}", UploadHandler),
    ("/api/v1/uploads/{upload_id}/pack", PackHandler),
    ("/api/v1/uploads/{upload_id}/blobs/{hash}", BlobHandler),
    ("/api/v1/uploads/{upload_id}/commit", CommitHandler),
]

