"""Progress reporting hooks: the CLI draws rich bars, widgets draw their own, tests ignore them."""

from __future__ import annotations


class ProgressObserver:
    """No-op base; override what you want to show."""

    def stage(self, name: str, total: int, unit: str) -> None:
        """A new stage starts: 'hash' (files), 'send' (bytes), 'commit', 'download' (bytes)."""

    def advance(self, name: str, amount: int) -> None:
        """``amount`` more units of stage ``name`` are done."""

    def note(self, message: str) -> None:
        """Something worth telling the person (skipped symlinks, resumed upload)."""
