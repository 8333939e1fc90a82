"""Tables, JSON and progress bars for the CLI."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from floyd.client.progress import ProgressObserver
from floyd.client.transfer import UploadResult
from floyd.formatting import fmt_bytes, fmt_when

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "Nothing here yet.") -> None:
    rows = list(rows)
    if not rows:
        console.print(empty, style="dim")
        return
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*["" if v is None else escape(str(v)) for v in row])
    console.print(table)


def when(iso: str | None) -> str:
    """A timestamp in a table; empty when there is none (``when(x) or "never"`` reads well)."""
    return fmt_when(iso, "")


def say(text: str) -> None:
    """One message to stdout, with rich markup (escape what comes from the platform)."""
    console.print(text, highlight=False, soft_wrap=True)


def short(text: str | None, width: int = 40) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def cells(values: Iterable[Any]) -> list[str]:
    """Table cells as plain text (rich would read '[...]' in a message as markup)."""
    return [escape("" if v is None else str(v)) for v in values]


def sent_summary(up: UploadResult) -> str:
    return ("0 files sent: unchanged" if up.duplicate or not up.sent_files
            else f"{up.sent_files} file(s) sent, {fmt_bytes(up.sent_bytes)}")


class RichProgress(ProgressObserver):
    """Hashing as files done; sending and downloading as bytes with rate and ETA."""

    def __init__(self, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<11}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=not enabled or not err_console.is_terminal,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.units: dict[str, str] = {}
        self.download_cols = (DownloadColumn(), MofNCompleteColumn())

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage(self, name: str, total: int, unit: str) -> None:
        labels = {"hash": "Hashing", "send": "Uploading", "commit": "Committing", "download": "Downloading"}
        self.units[name] = unit
        self.tasks[name] = self.progress.add_task(labels.get(name, name), total=total or None, count="")
        self._update(name)

    def advance(self, name: str, amount: int) -> None:
        if name in self.tasks:
            self.progress.advance(self.tasks[name], amount)
            self._update(name)

    def _update(self, name: str) -> None:
        task = self.progress.tasks[self.tasks[name]]
        unit = self.units[name]
        if unit == "bytes":
            total = fmt_bytes(task.total) if task.total else "?"
            text = f"{fmt_bytes(task.completed)}/{total}"
        else:
            text = f"{int(task.completed)}/{int(task.total or 0)} {unit}"
        self.progress.update(self.tasks[name], count=text)

    def note(self, message: str) -> None:
        self.progress.console.print(message, style="yellow")
