"""The dataset pages in a real browser: versions, a folder tree page by page, previews of text,
CSV, JSON, images and binaries, downloads of a file and of a folder, and the diff of two versions."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import zlib
from pathlib import Path

import requests

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.browser import login
from tests.support.platform import Platform, write_tree

NAME = "dspages-browse"


def png(width: int, height: int) -> bytes:
    """A small valid RGB PNG (red), made here so no test data is fetched."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xd0\x20\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def csv_rows(n: int, tag: str) -> bytes:
    return ("sepal,petal,species\n" + "".join(f"{i}.1,{i}.2,{tag}-{i}\n" for i in range(n))).encode()


FIRST = {
    "README.md": b"# dspages test data 4f2a\n<script>alert(1)</script>\n",
    "data/iris.csv": csv_rows(120, "setosa"),
    "config.json": json.dumps({"lr": 0.1, "layers": [64, 32], "tag": "dspages 4f2a"}).encode(),
    "img/pixel.png": png(3, 2),
    "bin/blob.bin": b"\x00\x01\x02dspages-binary\x00" * 10,
    **{f"many/f{i:02d}.txt": f"many file {i} dspages".encode() for i in range(25)},
}
SECOND = {**{k: v for k, v in FIRST.items() if k != "config.json"},
          "data/iris.csv": csv_rows(200, "virginica"), "new.txt": b"added in v2 dspages 4f2a"}


def make_versions(platform: Platform, tmp_path: Path) -> None:
    admin = platform.admin
    assert admin.api("POST", "datasets", json={"name": NAME}).status_code == 201
    client = FloydClient(platform.url, admin.token)
    upload(client, "admin", NAME, write_tree(tmp_path / "v1", FIRST), "first cut")
    upload(client, "admin", NAME, write_tree(tmp_path / "v2", SECOND), "more iris rows")


def test_dataset_pages(page, platform: Platform, tmp_path: Path) -> None:
    make_versions(platform, tmp_path)
    login(page, platform, "admin", (platform.root / "admin-password").read_text().strip())
    base = platform.url + f"services/floyd/datasets/admin/{NAME}"

    # Versions with their messages and sizes; the tree of the latest.
    page.goto(base)
    versions = page.locator("#versions").inner_text()
    assert "first cut" in versions and "more iris rows" in versions and "KiB" in versions
    top = page.locator("#files tbody tr td:first-child").all_inner_texts()
    assert top == ["README.md", "bin/", "data/", "img/", "many/", "new.txt"]

    # Into a folder, then a CSV's first rows as a table.
    page.locator("#files a", has_text="data/").click()
    page.wait_for_selector("#crumbs")
    assert "data" in page.locator("#crumbs").inner_text()
    page.locator("#files a", has_text="iris.csv").click()
    page.wait_for_selector("#preview-table")
    cells = page.locator("#preview-table th").all_inner_texts()
    assert cells == ["sepal", "petal", "species"]
    rows = page.locator("#preview-table tr")
    assert rows.count() == 50 and "virginica-0" in rows.nth(1).inner_text()
    with page.expect_download() as dl:
        page.locator("#download-file").click()
    assert Path(dl.value.path()).read_bytes() == SECOND["data/iris.csv"]

    # Text (escaped, never run), JSON laid out, an image, a binary.
    page.goto(base + "/preview?path=README.md")
    assert "<script>alert(1)</script>" in page.locator("#preview-text").inner_text()
    page.goto(base + "/preview?version=1&path=config.json")
    assert '"layers": [\n    64,' in page.locator("#preview-text").inner_text()
    page.goto(base + "/preview?path=img/pixel.png")
    page.wait_for_function("document.querySelector('#preview-image').complete")
    assert page.eval_on_selector("#preview-image", "img => [img.naturalWidth, img.naturalHeight]") == [3, 2]
    page.goto(base + "/preview?path=bin/blob.bin")
    assert "No preview" in page.locator("#preview").inner_text()

    # A folder as a tar stream.
    page.goto(base + "?path=data")
    with page.expect_download() as dl:
        page.locator("#download-folder").click()
    with tarfile.open(fileobj=io.BytesIO(Path(dl.value.path()).read_bytes())) as tar:
        assert tar.extractfile("data/iris.csv").read() == SECOND["data/iris.csv"]

    # A folder of 25 files, 10 to a page: each file once, in order.
    page.goto(base + "?path=many&limit=10")
    seen: list[str] = []
    for _ in range(5):
        seen += page.locator("#files tbody tr td:first-child").all_inner_texts()
        if page.locator("#files-next").count() == 0:
            break
        page.locator("#files-next").click()
        page.wait_for_load_state()
    assert seen == [f"f{i:02d}.txt" for i in range(25)]

    # The diff of the two versions, from the compare form.
    page.goto(base)
    page.select_option("#compare select[name=from]", "1")
    page.select_option("#compare select[name=to]", "2")
    page.locator("#compare button").click()
    page.wait_for_selector("#diff")
    assert "1 added, 1 removed, 1 changed" in page.locator("#diff-summary").inner_text()
    rows_text = {r.split("\t")[1]: r for r in page.locator("#diff tbody tr").all_inner_texts()}
    assert rows_text["new.txt"].startswith("added") and rows_text["config.json"].startswith("removed")
    changed = rows_text["data/iris.csv"]
    assert changed.startswith("changed") and "KiB" in changed


def test_dataset_page_refusals(platform: Platform) -> None:
    """Bad input on the pages and the download route is a 4xx that names the problem."""
    admin = platform.admin
    admin.api("POST", "datasets", json={"name": "dspages-bad"})
    tree_bytes = b"dspages refusal bytes 91c3"
    manifest = [{"path": "x.txt", "size": len(tree_bytes), "hash": "sha256:" + hashlib.sha256(tree_bytes).hexdigest()}]
    up = admin.api("POST", "datasets/admin/dspages-bad/uploads", json={"manifest": manifest}).json()
    admin.api("PUT", f"uploads/{up['id']}/blobs/{manifest[0]['hash']}", data=tree_bytes)
    assert admin.api("POST", f"uploads/{up['id']}/commit").status_code == 201
    api = "datasets/admin/dspages-bad/versions/1/download"
    r = admin.api("GET", api, params={"path": "x.txt", "inline": "1"})
    assert r.headers["Content-Type"].startswith("text/plain") and r.headers["Content-Disposition"].startswith("inline")
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Content-Security-Policy"] == "sandbox"
    assert admin.api("GET", api, params={"path": "x.txt", "inline": "maybe"}).status_code == 400
    assert admin.api("GET", api, params={"path": "../x.txt"}).status_code == 400
    diff = admin.api("GET", "datasets/admin/dspages-bad/diff", params={"from": "1", "to": "1"}).json()
    assert diff["files"] == [] and diff["summary"]["added"] == 0
    pages = platform.url + "services/floyd/datasets/admin/dspages-bad/"
    for url, params, status, words in [
        ("preview", {}, 400, "?path="), ("preview", {"path": "../x.txt"}, 400, ".."),
        ("preview", {"path": "nothing.txt"}, 404, "no file"), ("preview", {"path": "x.txt", "version": "7"}, 404, "7"),
        ("diff", {"from": "1"}, 400, "both versions"), ("diff", {"from": "1", "to": "x"}, 400, ""),
    ]:
        r = requests.get(pages + url, params=params, headers=admin.headers, timeout=30, allow_redirects=False)
        assert r.status_code == status and words in r.text, (url, params, r.status_code, r.text[:300])
    r = requests.get(pages + "preview", params={"path": "x.txt"}, headers=admin.headers, timeout=30)
    assert r.status_code == 200 and "dspages refusal bytes 91c3" in r.text
