"""``/api/v1/datasets``: datasets, versions, files, downloads and diffs."""

from __future__ import annotations

from urllib.parse import quote

from jobs_bridge.datasets.listing import DEFAULT_LIMIT, MAX_LIMIT
from jobs_bridge.datasets.preview import inline_type
from jobs_bridge.errors import BadRequest
from jobs_bridge.handlers.base import BaseHandler, to_http
from jobs_bridge.storage.tarstream import END_OF_ARCHIVE, MTIME_HEADER, member_header, padding


class DatasetListHandler(BaseHandler):
    async def get(self) -> None:
        items = await self.call(
            self.bridge.dataset_manager.list, self.caller,
            owner=self.optional_argument("owner"), public=self.flag_argument("public"),
        )
        self.write_json({"items": items})

    async def post(self) -> None:
        body = self.json_body()
        item = await self.call(
            self.bridge.dataset_manager.create, self.caller, body.get("name"),
            body.get("description", ""), body.get("public", False),
        )
        self.write_json(item, 201)


class DatasetHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        self.write_json(await self.call(self.bridge.dataset_manager.get, self.caller, owner, name))

    async def patch(self, owner: str, name: str) -> None:
        body = self.json_body()
        self.write_json(await self.call(self.bridge.dataset_manager.update, self.caller, owner, name, body))

    async def delete(self, owner: str, name: str) -> None:
        await self.call(self.bridge.dataset_manager.delete_dataset, self.caller, owner, name)
        self.set_status(204)
        self.finish()


class VersionListHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        items = await self.call(self.bridge.dataset_manager.versions, self.caller, owner, name)
        self.write_json({"items": items})


class VersionHandler(BaseHandler):
    async def get(self, owner: str, name: str, version: str) -> None:
        self.write_json(await self.call(self.bridge.dataset_manager.version, self.caller, owner, name, version))

    async def delete(self, owner: str, name: str, version: str) -> None:
        force = self.flag_argument("force")
        info = await self.call(self.bridge.dataset_manager.delete_version, self.caller, owner, name, version, force)
        self.write_json(info)


class FilesHandler(BaseHandler):
    """One page of a version's listing (``limit`` entries after the cursor ``after``)."""

    async def get(self, owner: str, name: str, version: str) -> None:
        limit = self.int_argument("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        listing = await self.call(
            self.bridge.dataset_manager.list_files, self.caller, owner, name, version,
            self.raw_argument("path"), self.flag_argument("recursive"),
            self.raw_argument("after"), limit,
        )
        self.write_json(listing)


class DownloadHandler(BaseHandler):
    """One file as its bytes, or a directory (or the whole version) as a tar stream; with
    ``?inline=1`` an image or text file is sent for the browser to show (the dataset page)."""

    kind = "data"  # Dataset.kind served: model versions are downloaded the same way

    async def get(self, owner: str, name: str, version: str) -> None:
        path = self.raw_argument("path")
        inline = self.flag_argument("inline")
        manager = self.bridge.dataset_manager
        info, entries, single = await self.call(manager.select_for_download, self.caller, owner, name, version, path,
                                                  self.kind)
        # Bytes a user stored never run as a page of this origin (the dataset page links here).
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox")
        if single:
            entry = entries[0]
            shown = inline_type(entry.path) if inline else None  # images and text only, never HTML or SVG
            self.set_header("Content-Type", shown or "application/octet-stream")
            self.set_header("Content-Length", str(entry.size))
            self.set_header("X-Floyd-Hash", entry.hash)
            if entry.mtime is not None:
                self.set_header(MTIME_HEADER, repr(entry.mtime))
            filename = entry.path.rsplit("/", 1)[-1]
            disposition = "inline" if shown else "attachment"
            self.set_header("Content-Disposition", f"{disposition}; filename*=UTF-8''{quote(filename)}")
            await self._send_blob(entry.hexdigest)
            self.finish()
            return
        base = path.strip("/")
        root = base.rsplit("/", 1)[-1] if base else f"{name}-{info['number']}"
        await self.call(self.bridge.store.settle)  # blobs of a version just uploaded may be in a journal
        self.set_header("Content-Type", "application/x-tar")
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(root)}.tar")
        for entry in entries:
            rel = entry.path[len(base) + 1:] if base else entry.path
            self.write(member_header(f"{root}/{rel}", entry.size, 0o444, entry.mtime or 0))
            await self._send_blob(entry.hexdigest, settled=True)
            self.write(padding(entry.size))
        self.write(END_OF_ARCHIVE)
        self.finish()

    async def _send_blob(self, hexdigest: str, settled: bool = False) -> None:
        store = self.bridge.store
        await self.stream_file(store.path(hexdigest) if settled else await self.call(store.file, hexdigest))


class DiffHandler(BaseHandler):
    async def get(self, owner: str, name: str) -> None:
        a = self.raw_argument("from")
        b = self.raw_argument("to")
        if not a or not b:
            raise to_http(BadRequest("Give both versions to compare: ?from=1&to=2."))
        self.write_json(await self.call(self.bridge.dataset_manager.diff, self.caller, owner, name, a, b))


default_handlers = [
    ("/api/v1/datasets", DatasetListHandler),
    ("/api/v1/datasets/{owner}/{name}", DatasetHandler),
    ("/api/v1/datasets/{owner}/{name}/versions", VersionListHandler),
    ("/api/v1/datasets/{owner}/{name}/versions/{version}", VersionHandler),
    ("/api/v1/datasets/{owner}/{name}/versions/{version}/files", FilesHandler),
    ("/api/v1/datasets/{owner}/{name}/versions/{version}/download", DownloadHandler),
    ("/api/v1/datasets/{owner}/{name}/diff", DiffHandler),
]
