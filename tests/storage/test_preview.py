"""The dataset page's previews from a file's head (jobs_bridge/datasets/preview.py), no platform."""

from __future__ import annotations

import json

from jobs_bridge.datasets.preview import CSV_ROWS, HEAD_BYTES, inline_type, make_preview, read_limit


def test_csv_shows_the_first_rows_and_drops_a_cut_line() -> None:
    data = "a,b\n" + "".join(f"{i},x{i}\n" for i in range(200))
    head = data.encode()[:100]
    p = make_preview("t/data.csv", len(data), head)
    assert p.kind == "csv" and p.truncated and p.rows[0] == ["a", "b"]
    assert all(len(r) == 2 for r in p.rows)  # the last, cut line is left out
    whole = make_preview("data.csv", len(data), data.encode())
    assert len(whole.rows) == CSV_ROWS and whole.truncated
    assert make_preview("x.tsv", 8, b"a\tb\n1\t2\n").rows == [["a", "b"], ["1", "2"]]


def test_json_is_laid_out_when_whole_and_valid() -> None:
    raw = json.dumps({"b": [1, 2], "a": "é"}).encode()
    p = make_preview("c.json", len(raw), raw)
    assert p.kind == "json" and '"b": [\n    1,' in p.text and "é" in p.text
    assert make_preview("c.json", 5, b"{nope").kind == "text"
    assert make_preview("c.json", 10 * len(raw), raw).kind == "text"  # only its head: not parsed


def test_text_binary_empty_and_images() -> None:
    assert make_preview("r.md", 3, b"<b>").text == "<b>"  # the template escapes it
    long = b"x" * (HEAD_BYTES + 10)
    p = make_preview("big.log", len(long), long[:HEAD_BYTES])
    assert p.kind == "text" and p.truncated and len(p.text) == HEAD_BYTES
    assert make_preview("w.bin", 4, b"ab\x00c").kind == "binary"
    assert make_preview("latin.txt", 3, "é".encode("latin-1") + b"ab").kind == "binary"
    cut = "aé".encode()[:2]  # a head that ends inside a character is still text
    assert make_preview("u.txt", 10, cut).text == "a"
    assert make_preview("e.txt", 0, b"").kind == "empty"
    assert make_preview("p.PNG", 10, b"").kind == "image" and read_limit("p.png") == 0


def test_only_safe_types_go_inline() -> None:
    assert inline_type("a/b.png") == "image/png" and inline_type("x.csv").startswith("text/plain")
    assert inline_type("page.html") is None and inline_type("logo.svg") is None and inline_type("x") is None
