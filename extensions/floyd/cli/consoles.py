"""rich's consoles and progress bars, for the commands that draw them (uploads, downloads, deploys).

Kept out of :mod:`floyd.cli.output` so that a command printing a table or JSON never imports rich.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from floyd.client.progress import ProgressObserver
from floyd.formatting import fmt_bytes

console = Console(soft_wrap=True)  # a message is one line in a pipe; a terminal wraps it itself
err_console = Console(stderr=True, soft_wrap=True)


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
