"""Tables, JSON and messages for the CLI, cheap to import.

Tables and JSON are plain text (:mod:`floyd.cli.tables`); messages with rich markup (``say``) and
progress bars (:mod:`floyd.cli.consoles`) import rich when they are first used, so ``floyd status``
and ``floyd --version`` never pay for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from floyd.cli.tables import TableStream, render
from floyd.cli.term import stdout_is_terminal, terminal_width
from floyd.formatting import fmt_bytes, fmt_when

if TYPE_CHECKING:
    from floyd.client.transfer import UploadResult


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "Nothing here yet.") -> None:
    """Every value whole in a pipe; on a terminal only free-text columns shorten to fit."""
    rows = list(rows)
    if not rows:
        sys.stdout.write(empty + "\n")
        return
    tty = stdout_is_terminal()
    lines = render(columns, rows, terminal_width() if tty else None, bold_header=tty)
    sys.stdout.write("\n".join(lines) + "\n")


def print_table_pages(columns: Sequence[str], pages: Iterable[Sequence[Sequence[Any]]],
                      empty: str = "Nothing here yet.") -> None:
    """A table of rows that arrive page by page, each page printed as soon as it comes."""
    tty = stdout_is_terminal()
    table = TableStream(columns, terminal_width() if tty else None, bold_header=tty)
    printed = False
    for rows in pages:
        lines = table.lines(rows)
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            printed = True
    if not printed:
        sys.stdout.write(empty + "\n")


def _indented(value: Any, depth: int) -> str:
    """``value`` as print_json writes it ``depth`` levels deep (JSON strings hold no raw newline)."""
    return json.dumps(value, indent=2, sort_keys=True).replace("\n", "\n" + "  " * depth)


def print_json_pages(pages: Iterable[dict], key: str, leave_out: Sequence[str] = ("next",)) -> None:
    """What ``print_json`` writes for the first page with ``key`` holding the items of every
    page, written page by page: the same text, without the whole list in memory."""
    out = sys.stdout
    items = 0
    tail: list[str] | None = None
    for page in pages:
        if tail is None:
            rest = sorted(k for k in page if k != key and k not in leave_out)
            out.write("{\n" + "".join(f"  {json.dumps(k)}: {_indented(page[k], 1)},\n" for k in rest if k < key))
            out.write(f"  {json.dumps(key)}: [")
            tail = [f",\n  {json.dumps(k)}: {_indented(page[k], 1)}" for k in rest if k > key]
        for item in page[key]:
            out.write(("," if items else "") + "\n    " + _indented(item, 2))
            items += 1
        out.flush()
    if tail is None:
        print_json({key: []})
        return
    out.write(("\n  ]" if items else "]") + "".join(tail) + "\n}\n")


def when(iso: str | None) -> str:
    """A timestamp in a table; empty when there is none (``when(x) or "never"`` reads well)."""
    return fmt_when(iso, "")


def say(text: str) -> None:
    """One message to stdout, with rich markup (escape what comes from the platform with ``esc``)."""
    from floyd.cli.consoles import console

    console.print(text, highlight=False, soft_wrap=True)


def esc(text: object) -> str:
    """``text`` safe inside ``say``'s markup (rich's escape, imported when a message needs it)."""
    from rich.markup import escape

    return escape(str(text))


def short(text: str | None, width: int = 40) -> str:
    """Free text in a table cell: one line, at most ``width`` on a terminal, whole in a pipe."""
    text = (text or "").replace("\n", " ")
    if not stdout_is_terminal():
        return text
    return text if len(text) <= width else text[: width - 1] + "…"


def cells(values: Iterable[Any]) -> list[str]:
    """Table cells as text (None is empty)."""
    return ["" if v is None else str(v) for v in values]


def sent_summary(up: UploadResult) -> str:
    return ("0 files sent: unchanged" if up.duplicate or not up.sent_files
            else f"{up.sent_files} file(s) sent, {fmt_bytes(up.sent_bytes)}")
