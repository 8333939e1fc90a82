"""``floyd data ls`` page by page: the same output as the whole listing, printed as pages arrive."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from floyd.cli import output
from floyd.cli.main import cli
from floyd.cli.tables import TableStream, render
from floyd.client import FloydClient, http
from floyd.client.transfer import upload
from floyd.formatting import fmt_bytes
from tests.support.platform import Platform, User, write_tree

FILES = {**{f"train/{i:02d}.txt": b"x" * i for i in range(11)},
         "a file with spaces.txt": b"s", "dir/deeper/with-a-much-longer-name-than-the-first-page.bin": b"long",
         "é.txt": b"e", "odd&name+#.txt": b"o"}


def cells(text: str) -> list[list[str]]:
    """A table's rows as cells (columns are two or more spaces apart; no path here has two)."""
    return [re.split(r" {2,}", line.strip()) for line in text.splitlines()]


@pytest.fixture
def listed(platform: Platform, alice: User, tree: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """alice/lsdata:1 with FILES; pages of 4 entries; returns the stdout size at each page request."""
    alice.api("POST", "datasets", json={"name": "lsdata"})
    write_tree(tree, FILES)
    upload(FloydClient(platform.url, alice.token), "alice", "lsdata", tree)
    monkeypatch.setenv("FLOYD_URL", platform.url)
    monkeypatch.setenv("FLOYD_TOKEN", alice.token)
    monkeypatch.setattr(http, "FILE_PAGE", 4)
    written: list[int] = []
    files = FloydClient.files

    def counting(self: FloydClient, *args: object, **kwargs: object) -> dict:
        written.append(len(sys.stdout.buffer.getvalue()))  # type: ignore[attr-defined]  # CliRunner's BytesIO
        return files(self, *args, **kwargs)  # type: ignore[arg-type]  # the same call, passed on

    monkeypatch.setattr(FloydClient, "files", counting)
    return written


def whole(alice: User, recursive: bool) -> dict:
    return alice.api("GET", "datasets/alice/lsdata/versions/1/files",
                     params={"recursive": "1" if recursive else "0", "limit": 10_000}).json()


@pytest.mark.parametrize("recursive", [True, False])
def test_ls_table_streams_the_whole_listing(alice: User, listed: list[int], recursive: bool) -> None:
    result = CliRunner().invoke(cli, ["data", "ls", "lsdata:1", *(["-r"] if recursive else [])])
    assert result.exit_code == 0, result.output
    full = whole(alice, recursive)
    expected = render(["PATH", "TYPE", "SIZE", "FILES"],
                      [(f["path"], f["type"], fmt_bytes(f["size"]), f.get("file_count", "")) for f in full["files"]])
    assert cells(result.output) == cells("\n".join(expected))
    pages = -(-len(full["files"]) // 4)
    assert len(listed) == pages > 1
    assert all(b > a for a, b in zip(listed[1:], listed[2:], strict=False))  # each page printed before the next is asked for
    assert listed[1] > 0


def test_ls_json_streams_the_same_text(alice: User, listed: list[int]) -> None:
    result = CliRunner().invoke(cli, ["data", "ls", "lsdata:1", "-r", "--json"])
    assert result.exit_code == 0, result.output
    full = whole(alice, True)
    del full["next"]
    buf = io.StringIO()
    sys.stdout, saved = buf, sys.stdout
    try:
        output.print_json(full)
    finally:
        sys.stdout = saved
    assert result.output == buf.getvalue()
    assert json.loads(result.output)["files"] == full["files"]
    assert len(listed) > 1 and listed[1] > 0


def test_table_stream_never_cuts_a_path() -> None:
    table = TableStream(["PATH", "TYPE", "SIZE", "MESSAGE"], limit=30)
    first = table.lines([("a", "file", "1 B", "short")])
    later = table.lines([("a/much/longer/path/than/the/first/page/had.txt", "file", "2 B", "a long message " * 5)])
    assert first[0].startswith("PATH") and len(first) == 2
    assert later[0].startswith("a/much/longer/path/than/the/first/page/had.txt  file")
    assert "a long message a long message" not in later[0]  # free text is shortened on a terminal
    assert table.lines([]) == []
