"""Plain-text tables: every value in full when stdout is a pipe, fitted to the width on a terminal.

A pipe or a file gets each cell whole (``floyd status | grep`` must find the whole job id), columns
two spaces apart. On a terminal, a table wider than the window shortens only its free-text columns
(messages, descriptions, metrics: anything not in :data:`KEEP_WHOLE`), never an id, a name or a path.
No rich here: a table is the whole output of the commands people type most (see ``floyd.cli.main``).
"""

from __future__ import annotations

from collections.abc import Sequence

GAP = "  "
# columns whose values are names someone copies or greps: never shortened
KEEP_WHOLE = {"JOB", "DATASET", "PROJECT", "ENDPOINT", "VERSION", "LATEST", "PATH", "ID", "NAME", "FIELD",
              "URL", "STATE", "ENTRY", "SNAPSHOT", "PACKAGE", "SERVING", "NEWEST", "PREFIX", "CREATED"}
MIN_SHORTENED = 8


def one_line(value: object) -> str:
    """A cell's text: None is empty, line breaks become spaces."""
    return "" if value is None else str(value).replace("\r", " ").replace("\n", " ")


def fit_widths(columns: Sequence[str], widths: list[int], limit: int | None) -> list[int]:
    """The widths to draw: free-text columns shrink, widest first, until the row fits ``limit``."""
    widths = list(widths)
    if limit is None:
        return widths
    free = [i for i, c in enumerate(columns) if c.upper() not in KEEP_WHOLE]
    while sum(widths) + len(GAP) * (len(widths) - 1) > limit:
        shrinkable = [i for i in free if widths[i] > max(MIN_SHORTENED, len(columns[i]))]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def natural_widths(columns: Sequence[str], text: Sequence[Sequence[str]]) -> list[int]:
    """Each column as wide as its header and widest cell."""
    return [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]


def header_line(columns: Sequence[str], widths: Sequence[int], bold: bool = False) -> str:
    header = GAP.join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    return f"\033[1m{header}\033[0m" if bold else header


def row_lines(text: Sequence[Sequence[str]], widths: Sequence[int]) -> list[str]:
    return [GAP.join(clip(v, w).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in text]


def render(columns: Sequence[str], rows: Sequence[Sequence[object]], limit: int | None = None,
           bold_header: bool = False) -> list[str]:
    """The table's lines; ``limit``: the terminal width (None: no limit, nothing is shortened)."""
    text = [[one_line(v) for v in row] for row in rows]
    widths = fit_widths(columns, natural_widths(columns, text), limit)
    return [header_line(columns, widths, bold_header), *row_lines(text, widths)]


class TableStream:
    """A table printed page by page, never holding more than one page of rows.

    The widths come from the rows seen so far: the first page sets them, and a wider value on a
    later page widens its column from there on (lines already printed stay as they were). A value
    of a :data:`KEEP_WHOLE` column is never cut, and nothing is cut without ``limit`` (a pipe)."""

    def __init__(self, columns: Sequence[str], limit: int | None = None, bold_header: bool = False) -> None:
        self.columns = columns
        self.limit = limit
        self.bold_header = bold_header
        self.seen: list[int] | None = None

    def lines(self, rows: Sequence[Sequence[object]]) -> list[str]:
        """The lines of the next page of rows (the header comes with the first rows)."""
        text = [[one_line(v) for v in row] for row in rows]
        if not text:
            return []
        natural = natural_widths(self.columns, text)
        first = self.seen is None
        self.seen = natural if self.seen is None else [max(a, b) for a, b in zip(self.seen, natural, strict=True)]
        widths = fit_widths(self.columns, self.seen, self.limit)
        body = row_lines(text, widths)
        return [header_line(self.columns, widths, self.bold_header), *body] if first else body
