"""A job's ``code/``: its snapshot made writable for the job without copying it, where possible.

Three ways, best first (the job's record says which one it got, ``code_mount``):

- ``overlay``: the snapshot (already a hardlink tree on FLOYD_ROOT) is the read-only lower
  layer, ``.code/upper`` takes the job's writes, mounted at ``code/``; the same for every
  executor, since both bind or link ``code/``. Its cost does not grow with the file count:
  between the two, a layer of the snapshot's directories alone, owned by the container user
  and made once per snapshot (``cache/code-dirs/``), lets the job add, replace and delete
  files anywhere. When the job ends the overlay is unmounted and folded back
  (storage/overlay.py ``flatten``): ``code/`` holds what the job saw.
- ``reflink``: ``cp --reflink=always`` where the file system clones files (XFS, Btrfs).
- ``copy``: a real copy, as every job had before.

Overlay needs root, a file system that takes an upper directory (not overlay itself, as in
some containers), and a runtime that sees this process's mounts (the Docker engine in the same
mount namespace); otherwise the next way is taken.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path

from jobs_bridge.executors.contract import give_to_container_user
from jobs_bridge.storage import overlay
from jobs_bridge.storage.materialize import remove_tree

MODES = ("overlay", "reflink", "copy")
DIR_MODE, FILE_MODE = 0o775, 0o664  # the container user and its group write code/ and output/

log = logging.getLogger(__name__)


def layers(code: Path) -> Path:
    """Where a job's overlay keeps its upper and work directories (beside code/, hidden)."""
    return code.with_name(".code")


def reflink_works(scratch: Path) -> bool:
    """Does ``cp --reflink=always`` clone within ``scratch``'s file system?"""
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        scratch.mkdir(parents=True)
        (scratch / "a").write_bytes(b"x")
        return subprocess.run(["cp", "--reflink=always", str(scratch / "a"), str(scratch / "b")],
                              capture_output=True).returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class CodeMounter:
    """Gives a job its code/ in the best way this host allows; learns what works once."""

    def __init__(self, scratch: Path, mounts_visible: bool, snapshots: Path, dirs_cache: Path) -> None:
        self.scratch = scratch  # a directory on FLOYD_ROOT for the probes (tmp/)
        self.snapshots = snapshots  # the snapshots' root: a snapshot's directory layer has its path below dirs_cache
        self.dirs_cache = dirs_cache
        self.mounts_visible = mounts_visible  # does the runtime see this process's mounts?
        self._works: dict[str, bool] = {"copy": True}

    def works(self, mode: str) -> bool:
        if mode not in self._works:
            probe = self.scratch / f"code-probe-{os.getpid()}"
            if mode == "overlay":
                self._works[mode] = self.mounts_visible and overlay.overlay_works(probe)
            else:
                self._works[mode] = reflink_works(probe)
            log.info("Job code by %s: %s", mode, "possible" if self._works[mode] else "not possible here")
        return self._works[mode]

    def provide(self, wanted: str, snapshot: Path, code: Path) -> str:
        """Make ``code`` the job's writable view of ``snapshot``; returns the mode used."""
        self.release(snapshot, code)
        if code.exists():
            remove_tree(code)
        for mode in MODES[MODES.index(wanted):]:
            if not self.works(mode):
                continue
            try:
                getattr(self, f"_{mode}")(snapshot, code)
                return mode
            except (OSError, subprocess.CalledProcessError) as exc:
                if mode == "copy":
                    raise
                log.warning("Job code by %s failed for %s, falling back: %s", mode, code, exc)
                self.release(snapshot, code)
                if code.exists():
                    remove_tree(code)
        raise AssertionError("copy always works")

    def _overlay(self, snapshot: Path, code: Path) -> None:
        top = layers(code)
        upper, work = top / "upper", top / "work"
        work.mkdir(parents=True)
        upper.mkdir()
        give_to_container_user(upper, dir_mode=DIR_MODE)
        code.mkdir()
        overlay.mount_overlay([self._dirs_layer(snapshot), snapshot], upper, work, code)

    def _dirs_layer(self, snapshot: Path) -> Path:
        """The snapshot's directories (no files), the container user's, made once per snapshot:
        the lower layer above the snapshot, so that a merged directory is the job's to write in
        (it may create, replace and delete files anywhere; the snapshot's files stay read-only)."""
        rel = snapshot.relative_to(self.snapshots)
        layer = self.dirs_cache / rel
        if layer.is_dir():
            return layer
        building = layer.with_name(f".{layer.name}.{os.getpid()}.{threading.get_ident()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        for dirpath, dirnames, _files in os.walk(snapshot):
            base = building / Path(dirpath).relative_to(snapshot)
            for d in dirnames:
                (base / d).mkdir()
        give_to_container_user(building, recursive=True, dir_mode=DIR_MODE)
        try:
            building.rename(layer)
        except OSError:  # another job of the same snapshot made it first
            shutil.rmtree(building, ignore_errors=True)
        return layer

    def _reflink(self, snapshot: Path, code: Path) -> None:
        subprocess.run(["cp", "-a", "--reflink=always", str(snapshot), str(code)], check=True, capture_output=True)
        give_to_container_user(code, recursive=True, file_mode=FILE_MODE, dir_mode=DIR_MODE)

    def _copy(self, snapshot: Path, code: Path) -> None:
        shutil.copytree(snapshot, code, copy_function=shutil.copy2)
        give_to_container_user(code, recursive=True, file_mode=FILE_MODE, dir_mode=DIR_MODE)

    @staticmethod
    def release(snapshot: Path, code: Path) -> bool:
        """Unmount a job's overlay and fold its writes into code/ (no-op for the other modes,
        and when already done). True when there was something to release."""
        top = layers(code)
        mounted = overlay.unmount(code) if code.is_dir() else False
        if not top.exists():
            return mounted
        if (top / "upper").is_dir():
            overlay.flatten(snapshot, top / "upper", code)
        shutil.rmtree(top)
        return True
