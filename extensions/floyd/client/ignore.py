"""``.floydignore``: gitignore-style patterns for what a code snapshot leaves out."""

from __future__ import annotations

import fnmatch
from pathlib import Path

DEFAULT_FLOYDIGNORE = """# Files and directories left out of job code snapshots (gitignore syntax).
.git/
.ipynb_checkpoints/
__pycache__/
*.pyc
.venv/
venv/
node_modules/
.DS_Store
"""


class IgnoreRules:
    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, bool, bool, str]] = []  # (negate, dir_only, anchored, pattern)
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.strip("/") if dir_only else line
            anchored = line.startswith("/") or "/" in line
            self.rules.append((negate, dir_only, anchored, line.lstrip("/")))

    @classmethod
    def for_directory(cls, root: Path) -> IgnoreRules:
        f = root / ".floydignore"
        return cls(f.read_text() if f.is_file() else DEFAULT_FLOYDIGNORE)

    def _match(self, path: str, is_dir: bool) -> bool | None:
        result = None
        name = path.rsplit("/", 1)[-1]
        for negate, dir_only, anchored, pattern in self.rules:
            if dir_only and not is_dir:
                continue
            hit = fnmatch.fnmatchcase(path, pattern) if anchored else fnmatch.fnmatchcase(name, pattern)
            if hit:
                result = not negate
        return result

    def keep(self, path: str) -> bool:
        """True unless the file, or one of its directories, is ignored."""
        parts = path.split("/")
        for i in range(1, len(parts)):
            if self._match("/".join(parts[:i]), True):
                return False
        return not self._match(path, False)
