"""The reuse key of a step: what its result depends on, hashed (pure functions, no database).

Two steps with the same key would compute the same output, so the later one reuses the
earlier one's job instead of running. The key covers the step's code (the snapshot's files
under the step's ``code`` paths, or the whole snapshot), its inputs (a dataset version's id; an
upstream output's content, so an upstream step that ran again and wrote the same bytes changes
nothing downstream), its parameters, command or notebook, and the environment's image id.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

CHUNK = 1 << 20


def code_hash(files: Mapping[str, str], paths: Sequence[str]) -> str:
    """The hash of the snapshot's ``{path: hash}`` entries under ``paths`` (all of them when empty)."""
    def wanted(path: str) -> bool:
        return not paths or any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)

    chosen = sorted((p, h) for p, h in files.items() if wanted(p))
    return "sha256:" + hashlib.sha256(json.dumps(chosen).encode()).hexdigest()


def tree_hash(root: Path) -> str:
    """The content of a finished job's output (or a folder of it): paths and bytes, not times."""
    digest = hashlib.sha256()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            digest.update(str(path.relative_to(root)).encode("utf-8", "surrogateescape") + b"\0")
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def reuse_key(parts: Mapping[str, object]) -> str:
    """One id for everything a step's output depends on."""
    return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
