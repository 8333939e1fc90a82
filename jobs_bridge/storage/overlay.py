"""Overlay mounts: a read-only tree below, a writable directory above, nothing copied.

A job's code is its snapshot (a tree of hardlinks into the blob store) seen through an
overlay whose upper directory takes the job's writes. These are the file-system primitives:
mount, unmount, find the mounts a crashed bridge left, probe whether overlay works on a file
system at all (it does not on overlay itself: the kernel refuses an upper directory there), and
fold the upper directory back onto the snapshot once the job ended (``flatten``), so the job's
``code/`` is an ordinary directory again. Mounting needs root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
from pathlib import Path

MNT_DETACH = 2
# redirect_dir/metacopy/index off: the upper directory then holds only whole files, whiteouts and
# opaque directories, which is all that flatten() has to understand.
OPTIONS = "redirect_dir=off,metacopy=off,index=off"
OPAQUE = "trusted.overlay.opaque"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(rc: int, what: str, path: Path) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} {path}: {os.strerror(err)}")


def mount_overlay(lower: Path | list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount ``lower`` (read-only; a list: the first on top) under ``upper`` (writable) at
    ``target``; raises OSError."""
    lowers = lower if isinstance(lower, list) else [lower]
    paths = (*lowers, upper, work)
    if any(c in str(p) for p in paths for c in ",:\\"):  # the option string cannot carry them
        raise OSError(errno.EINVAL, f"overlay cannot name paths with ',', ':' or '\\': {paths}")
    options = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work},{OPTIONS}"
    _check(_libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode()), "mount overlay on", target)


def unmount(target: Path) -> bool:
    """Unmount ``target``; lazily when something still holds it. False when it was no mount."""
    if _libc.umount2(os.fsencode(target), 0) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    if err == errno.EBUSY:
        _check(_libc.umount2(os.fsencode(target), MNT_DETACH), "unmount (detach)", target)
        return True
    raise OSError(err, f"unmount {target}: {os.strerror(err)}")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def overlay_mounts(under: Path) -> list[Path]:
    """Overlay mount points at or below ``under`` in this process's mount namespace."""
    found = []
    prefix = str(under.resolve()).rstrip("/") + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = _unescape(left.split()[4])
            if right.split()[:1] == ["overlay"] and (point + "/").startswith(prefix):
                found.append(Path(point))
    return found


def overlay_works(scratch: Path) -> bool:
    """Can this process mount an overlay whose layers live in ``scratch``'s file system?"""
    if os.geteuid() != 0:
        return False
    shutil.rmtree(scratch, ignore_errors=True)
    dirs = [scratch / d for d in ("lower", "upper", "work", "merged")]
    try:
        for d in dirs:
            d.mkdir(parents=True)
        (dirs[0] / "f").write_text("x")
        mount_overlay(*dirs)
        try:
            (dirs[3] / "g").write_text("y")
            return (dirs[3] / "f").read_text() == "x" and (dirs[1] / "g").exists()
        finally:
            unmount(dirs[3])
    except OSError:
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _link_or_copy(src: str, dest: Path) -> None:
    try:
        os.link(src, dest, follow_symlinks=False)
    except OSError as exc:  # past the link limit, across devices, or forbidden: copy it
        if exc.errno not in (errno.EMLINK, errno.EXDEV, errno.EPERM):
            raise
        shutil.copy2(src, dest, follow_symlinks=False)


def _merge(lower: Path, dest: Path) -> None:
    """Add to ``dest`` (an upper directory) what of ``lower`` the job left alone."""
    for entry in os.scandir(lower):
        target = dest / entry.name
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            if entry.is_dir(follow_symlinks=False):
                target.mkdir()
                _merge(Path(entry.path), target)
            else:
                _link_or_copy(entry.path, target)
            continue
        if _is_whiteout(st):  # the job deleted it
            target.unlink()
        elif stat.S_ISDIR(st.st_mode) and entry.is_dir(follow_symlinks=False) and not _is_opaque(target):
            _merge(Path(entry.path), target)
        # else the job's own version wins


def flatten(lower: Path, upper: Path, target: Path) -> None:
    """After unmounting: ``target`` (the empty mount point) becomes what the job saw, by moving
    ``upper`` there and hardlinking every untouched file of ``lower`` (no bytes copied)."""
    if target.exists():
        target.rmdir()
    os.rename(upper, target)
    _merge(lower, target)
