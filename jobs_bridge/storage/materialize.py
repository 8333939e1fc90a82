"""Lay a version out as a read-only tree of hardlinks into the blob store.

Hardlinks make the tree cost no bytes and make mounting it later a plain bind mount.
ext4 allows 65,000 links per inode, so past that (EMLINK) a file is copied instead.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.manifest import Entry


def materialize(store: BlobStore, entries: Iterable[Entry], target: Path) -> int:
    """Build ``target`` (which must not exist) and return how many files had to be copied."""
    target.mkdir(parents=True)
    copies = 0
    made: set[Path] = {target}
    for entry in entries:
        dest = target / entry.path
        parent = dest.parent
        if parent not in made:
            parent.mkdir(parents=True, exist_ok=True)
            made.add(parent)
        src = store.path(entry.hexdigest)
        try:
            os.link(src, dest)
        except OSError as exc:
            if exc.errno not in (errno.EMLINK, errno.EXDEV, errno.EPERM):
                raise
            shutil.copyfile(src, dest)
            os.chmod(dest, 0o444)
            copies += 1
    make_read_only(target)
    return copies


def make_read_only(tree: Path) -> None:
    for dirpath, _dirnames, _files in os.walk(tree, topdown=False):
        os.chmod(dirpath, 0o555)


def remove_tree(tree: Path) -> None:
    """Delete a read-only tree (directories are 0555, so make them writable first)."""
    if not tree.exists():
        return
    for dirpath, _dirnames, _files in os.walk(tree):
        mode = os.stat(dirpath).st_mode
        os.chmod(dirpath, stat.S_IMODE(mode) | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
    shutil.rmtree(tree)
