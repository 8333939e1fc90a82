"""What the dataset page shows of one file: text, the first rows of a CSV, JSON laid out, an image.

Only the file's first ``HEAD_BYTES`` are read (a JSON file up to ``JSON_WHOLE_BYTES`` whole, so
it can be laid out), so a preview costs the same on a 10 GiB file as on a small one. Images are
shown by the browser from the download route; only types a browser cannot run script from are
sent inline (``INLINE_TYPES``: no SVG, no HTML), the rest always as an attachment.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

HEAD_BYTES = 64 << 10  # bytes of a text file shown
JSON_WHOLE_BYTES = 1 << 20  # a JSON file up to this size is parsed and laid out
CSV_ROWS = 50  # rows of a CSV shown as a table
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".bmp": "image/bmp"}
# What the download route may send inline (the preview's <img>, a text file opened in a tab).
INLINE_TYPES = {**IMAGE_TYPES, ".txt": "text/plain; charset=utf-8", ".csv": "text/plain; charset=utf-8",
                ".json": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8"}
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}


@dataclass
class Preview:
    kind: str  # image | csv | json | text | binary | empty
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False


def kind_of(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in IMAGE_TYPES:
        return "image"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return "json" if suffix == ".json" else "text"


def read_limit(path: str) -> int:
    """How many bytes of the file the preview needs."""
    kind = kind_of(path)
    return 0 if kind == "image" else JSON_WHOLE_BYTES if kind == "json" else HEAD_BYTES


def inline_type(path: str) -> str | None:
    return INLINE_TYPES.get(PurePosixPath(path).suffix.lower())


def decode(head: bytes) -> str | None:
    """The text of ``head``, or None when it looks binary (a NUL, or not UTF-8 past a cut character)."""
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":  # the head may end inside a character, nothing else
            return None
        return head[: exc.start].decode("utf-8")


def make_preview(path: str, size: int, head: bytes) -> Preview:
    kind = kind_of(path)
    if kind == "image":
        return Preview("image")
    if size == 0:
        return Preview("empty")
    text = decode(head)
    if text is None:
        return Preview("binary")
    truncated = size > len(head)
    if kind == "csv":
        return csv_preview(path, text, truncated)
    if kind == "json" and not truncated:
        try:
            return Preview("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False)[:HEAD_BYTES])
        except ValueError:
            pass  # not valid JSON: shown as text
    return Preview("text", text[:HEAD_BYTES], truncated=truncated or len(text) > HEAD_BYTES)


def csv_preview(path: str, text: str, truncated: bool) -> Preview:
    """The first rows; a last line cut by the head is left out."""
    lines = text.splitlines(keepends=True)
    if truncated and lines and not lines[-1].endswith(("\n", "\r")):
        lines = lines[:-1]
    delimiter = CSV_SUFFIXES[PurePosixPath(path).suffix.lower()]
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter):
            if len(rows) == CSV_ROWS:
                return Preview("csv", rows=rows, truncated=True)
            rows.append(row)
    except csv.Error:
        return Preview("text", text[:HEAD_BYTES], truncated=truncated)
    return Preview("csv", rows=rows, truncated=truncated)
