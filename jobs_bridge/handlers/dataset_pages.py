"""The dataset pages: versions, a version's tree a page at a time, a file's preview, a diff.

Every page reads through the dataset manager as the caller (404 to others), the tree through the
files API's keyset pages (``datasets/listing.py``), so a folder of 100k files is never one HTML
page and never one query over the whole version. Downloads are links to the API's download route
(the HubOAuth cookie is accepted on a navigation and on a same-origin image).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from tornado import web

from jobs_bridge.datasets.listing import MAX_LIMIT
from jobs_bridge.datasets.preview import make_preview, read_limit
from jobs_bridge.errors import BadRequest, FloydError
from jobs_bridge.handlers.base import to_http
from jobs_bridge.handlers.pages import PageHandler
from jobs_bridge.storage.paths import clean_relpath

PAGE_FILES = 1000  # rows of a folder on the dataset page
DIFF_ROWS = 2000  # changes listed on the diff page (the API has them all)


VERSION_RE = re.compile(r"latest|[0-9]+")  # as the document's pattern for ?version=

def crumbs(path: str) -> list[tuple[str, str]]:
    """``a/b/c`` → [('a', 'a'), ('b', 'a/b'), ('c', 'a/b/c')]: each folder's name and path."""
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


class DatasetPageBase(PageHandler):
    def version_argument(self) -> str:
        """``?version=``: a number or ``latest`` (the default), checked even when the dataset has
        no version to show yet."""
        version = self.raw_argument("version", "latest")
        if not VERSION_RE.fullmatch(version):
            raise to_http(BadRequest(f"Invalid version {version!r}: give a number or 'latest', or leave it out."))
        return version

    def render_dataset(self, template: str, owner: str, name: str, **kwargs: object) -> None:
        base = f"{self.bridge.service_prefix}datasets/{quote(owner)}/{quote(name)}"
        api = f"{self.bridge.service_prefix}api/v1/datasets/{quote(owner)}/{quote(name)}"
        self.render_page(template, page_url=base, api_url=api, crumbs=crumbs, urlencode=urlencode, **kwargs)


class DatasetPage(DatasetPageBase):
    """A dataset: its versions (message, files, size), a compare form, and one page of a folder
    of the chosen version (``?version=&path=``; ``?recursive=1`` lists every file below it)."""

    @web.authenticated
    async def get(self, owner: str, name: str) -> None:
        # Every argument is checked first, even when the dataset has no version to list yet.
        version, path, after = self.version_argument(), self.raw_argument("path").strip("/"), self.raw_argument("after")
        for what, value in (("path", path), ("after", after)):
            if value:
                try:
                    clean_relpath(value, what)
                except FloydError as exc:
                    raise to_http(exc) from None
        recursive = self.flag_argument("recursive")
        limit = self.int_argument("limit", PAGE_FILES, 1, MAX_LIMIT) or PAGE_FILES
        manager = self.bridge.dataset_manager
        dataset = await self.call(manager.get, self.caller, owner, name)
        versions = await self.call(manager.versions, self.caller, owner, name)
        files, next_url = None, None
        if versions:
            files = await self.call(manager.list_files, self.caller, owner, name, version, path, recursive, after, limit)
            if files["next"]:
                query: dict[str, object] = {"version": files["version"]["number"], "after": files["next"]}
                if path:
                    query["path"] = path
                if recursive:
                    query["recursive"] = 1
                if self.get_argument("limit", None):
                    query["limit"] = limit
                next_url = "?" + urlencode(query)
        self.render_dataset("dataset.html", owner, name, dataset=dataset, versions=versions, files=files,
                            next_url=next_url, paged=bool(after), path=path, recursive=recursive)


class PreviewPage(DatasetPageBase):
    """One file of a version: size, hash, a download link and a preview (text, CSV rows, JSON,
    image); only the file's head is read (datasets/preview.py)."""

    @web.authenticated
    async def get(self, owner: str, name: str) -> None:
        path = self.raw_argument("path")
        if not path:
            raise to_http(BadRequest("Name the file to preview: ?path=folder/file.csv"))
        manager = self.bridge.dataset_manager
        dataset = await self.call(manager.get, self.caller, owner, name)
        info, entry, head = await self.call(manager.read_head, self.caller, owner, name,
                                            self.version_argument(), path, read_limit(path))
        self.render_dataset("dataset_preview.html", owner, name, dataset=dataset, version=info, entry=entry,
                            preview=make_preview(entry.path, entry.size, head))


class DiffPage(DatasetPageBase):
    """What changed from one version to another: each path added, removed or changed, with sizes."""

    @web.authenticated
    async def get(self, owner: str, name: str) -> None:
        a, b = self.raw_argument("from"), self.raw_argument("to")
        if not a or not b:
            raise to_http(BadRequest("Give both versions to compare: ?from=1&to=2."))
        manager = self.bridge.dataset_manager
        dataset = await self.call(manager.get, self.caller, owner, name)
        diff = await self.call(manager.diff, self.caller, owner, name, a, b)
        self.render_dataset("dataset_diff.html", owner, name, dataset=dataset, diff=diff,
                            rows=diff["files"][:DIFF_ROWS], hidden=max(0, len(diff["files"]) - DIFF_ROWS))


default_handlers = [
    ("/datasets/{owner}/{name}", DatasetPage),
    ("/datasets/{owner}/{name}/preview", PreviewPage),
    ("/datasets/{owner}/{name}/diff", DiffPage),
]
