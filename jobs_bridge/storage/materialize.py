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
    """Build ``target`` (which must not exist) and return how many files had to be copied.

    Plain strings and ``os.link``: pathlib objects per entry cost more than the links."""
    target.mkdir(parents=True)
    copies = 0
    top = str(target)
    blobs = str(store.root)
    made: set[str] = {""}
    for entry in entries:
        hexd = entry.hexdigest
        if len(hexd) != 64:  # parse_hash checked the digits when the entry was made
            store.path(hexd)  # raises BadRequest
        parent = entry.path.rpartition("/")[0]
        if parent not in made:
            os.makedirs(f"{top}/{parent}", exist_ok=True)
            made.add(parent)
        src = f"{blobs}/{hexd[:2]}/{hexd}"
        dest = f"{top}/{entry.path}"
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
