"""The files API in pages: keyset by path, ``limit``/``after``/``next``, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from floyd.client import FloydClient
from floyd.client.transfer import upload
from tests.support.platform import Platform, User, write_tree

# Names that need escaping in a query (& # + % = ? space), non-ASCII, and neighbours of the
# directory "d" on both sides of "d/" in byte order ("d-x", "d.txt" before, "d0", "dé" after).
ODD = ["odd name & co+#.txt", "100%=?.txt", "é/ü.txt", "日本/語.txt", "d-x", "d.txt", "d0", "dé",
       "d/a.txt", "d/e/f.txt", "d/e/g.txt", "d/z.txt", "a/b/c.txt", "Z.txt"]
FILES = {**{p: p.encode() for p in ODD}, **{f"many/{i:03d}.bin": bytes(i) for i in range(23)}}


def in_byte_order(paths: list[str]) -> list[str]:
    return sorted(paths, key=lambda p: p.encode())


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request: pytest.FixtureRequest) -> Platform:
    return request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'pg'}_platform")


@pytest.fixture
def ds(alice: User, tree: Path, request: pytest.FixtureRequest) -> str:
    name = "pages-" + hashlib.md5(request.node.nodeid.encode()).hexdigest()[:10]
    assert alice.api("POST", "datasets", json={"name": name}).status_code == 201
    write_tree(tree, FILES)
    upload(FloydClient(alice.platform.url, alice.token), "alice", name, tree)
    return name


def files_url(ds: str) -> str:
    return f"datasets/alice/{ds}/versions/1/files"


def walk(alice: User, ds: str, limit: int, **params: object) -> list[list[dict]]:
    """Every page, following ``next``; checks each page's size and cursor on the way."""
    pages, after = [], None
    while True:
        r = alice.api("GET", files_url(ds), params={**params, "limit": limit, **({"after": after} if after else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["files"]) <= limit
        pages.append(body["files"])
        if body["next"] is None:
            return pages
        assert len(body["files"]) == limit and body["next"] == body["files"][-1]["path"]
        after = body["next"]


@pytest.mark.parametrize("limit", [1, 2, 7, 10_000])
def test_recursive_pages_list_every_file_once_in_byte_order(alice: User, ds: str, limit: int) -> None:
    pages = walk(alice, ds, limit, recursive=1)
    paths = [f["path"] for page in pages for f in page]
    assert paths == in_byte_order(list(FILES))
    if limit < len(FILES):
        assert len(pages) == -(-len(FILES) // limit)  # the look-ahead row: no empty last page
    sizes = {f["path"]: f["size"] for page in pages for f in page}
    assert sizes == {p: len(b) for p, b in FILES.items()}


@pytest.mark.parametrize("path", ["", "d"])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_top_level_pages_sum_each_directory_once(alice: User, ds: str, limit: int, path: str) -> None:
    whole = alice.api("GET", files_url(ds), params={"path": path}).json()
    assert whole["next"] is None
    paged = [f for page in walk(alice, ds, limit, path=path) for f in page]
    assert paged == whole["files"]
    prefix = path + "/" if path else ""
    expected: dict[str, tuple[int, int]] = {}
    for p, data in FILES.items():
        if not p.startswith(prefix):
            continue
        head = prefix + p[len(prefix):].split("/", 1)[0]
        count, size = expected.get(head, (0, 0))
        expected[head] = (count + 1, size + len(data))
    got = {f["path"]: (f.get("file_count", 1), f["size"]) for f in paged}
    assert got == expected
    # A directory sorts where its files are: its path followed by "/".
    keys = [f["path"] + ("/" if f["type"] == "directory" else "") for f in paged]
    assert keys == in_byte_order(keys)
    if not path:
        assert [f["path"] for f in paged if f["path"].startswith("d")] == ["d-x", "d.txt", "d", "d0", "dé"]


def test_cursor_with_odd_characters_and_past_the_end(alice: User, ds: str) -> None:
    order = in_byte_order(list(FILES))
    for cursor in ("odd name & co+#.txt", "100%=?.txt", "é/ü.txt"):
        r = alice.api("GET", files_url(ds), params={"recursive": 1, "limit": 1, "after": cursor}).json()
        assert r["files"][0]["path"] == order[order.index(cursor) + 1]
    # A cursor that names no file still means "after this path".
    r = alice.api("GET", files_url(ds), params={"recursive": 1, "limit": 2, "after": "d/b"}).json()
    assert [f["path"] for f in r["files"]] == ["d/e/f.txt", "d/e/g.txt"]
    for params in ({"after": order[-1]}, {"after": "\U0010ffff"}, {"path": "many", "after": "many/999.bin"}):
        r = alice.api("GET", files_url(ds), params={"recursive": 1, **params})
        assert r.status_code == 200 and r.json()["files"] == [] and r.json()["next"] is None
    assert alice.api("GET", files_url(ds), params={"path": "nothing-here", "after": "a"}).status_code == 404


@pytest.mark.parametrize("query", ["limit=0", "limit=10001", "limit=-1", "limit=abc", "limit=1.5",
                                   "after=../x", "after=/abs", "after=a%00b", "after=a//b", "after=%FF"])
def test_bad_limit_or_cursor_is_400(alice: User, ds: str, query: str) -> None:
    r = alice.api("GET", f"{files_url(ds)}?recursive=1&{query}")
    assert r.status_code == 400, r.text
    assert query.split("=")[0] in r.json()["message"]


def test_no_limit_gives_the_whole_small_listing(alice: User, ds: str) -> None:
    """A client written before paging sends no limit and reads only ``files``."""
    r = alice.api("GET", files_url(ds), params={"recursive": 1}).json()
    assert [f["path"] for f in r["files"]] == in_byte_order(list(FILES)) and r["next"] is None
