"""A small filesystem a test can fill: a loop-mounted ext4 image (root only).

ext4 rather than tmpfs because directories and hardlinks there cost blocks too, as on a real
storage disk. Made with ``-m 0`` (no blocks reserved for root): the bridge runs as root here,
and a reserve would let it write on where a real disk would already be full.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHUNK = 1 << 20


class SmallDisk:
    """``mount`` an image of ``size`` bytes at ``mountpoint``; ``fill`` it; ``close`` undoes it all."""

    def __init__(self, image: Path, mountpoint: Path, size: int = 64 << 20) -> None:
        self.image = image
        self.mountpoint = mountpoint
        self.size = size
        self.mounted = False

    def open(self) -> SmallDisk:
        if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
            pytest.skip("a loop-mounted filesystem needs root and mkfs.ext4")
        with open(self.image, "wb") as f:
            f.truncate(self.size)
        run("mkfs.ext4", "-q", "-m", "0", "-F", str(self.image))
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        run("mount", "-o", "loop", str(self.image), str(self.mountpoint))
        self.mounted = True
        return self

    @property
    def free(self) -> int:
        st = os.statvfs(self.mountpoint)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0, name: str = "filler") -> Path:
        """Write a file that leaves about ``leave`` bytes free (0: the disk is full)."""
        path = self.mountpoint / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            block = b"\0" * CHUNK
            while self.free > leave:
                want = min(CHUNK, self.free - leave)
                try:
                    os.write(fd, block[: max(want, 4096)])
                except OSError:
                    break
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def close(self) -> None:
        if self.mounted:
            # Lazy: a platform that failed to stop may still hold files; the mount goes when they close.
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)
            self.mounted = False
        self.image.unlink(missing_ok=True)


def run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
