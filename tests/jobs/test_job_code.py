"""A job's /floyd/code: the snapshot mounted under a writable layer (overlay), nothing copied;
what the job wrote stays in its code/ after the end; the snapshot and other jobs never see it;
where overlay cannot work (FLOYD_ROOT on overlay itself, a config that says so) a copy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs_bridge.jobs.code import CodeMounter, layers
from jobs_bridge.storage import overlay
from jobs_bridge.storage.materialize import make_read_only
from tests.support.jobs import submit, wait_state
from tests.support.platform import TEST_BRIDGE_CONFIG, Platform

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting an overlay needs root")
FILES = {"a.txt": b"snapshot a\n", "pkg/b.txt": b"snapshot b\n", "pkg/deep/c.txt": b"snapshot c\n"}


def make_snapshot(root: Path) -> Path:
    """A snapshot as the bridge lays it out: read-only files and directories."""
    for rel, data in FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        p.chmod(0o444)
    make_read_only(root)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def unmount_all(tmp_path: Path) -> Iterator[None]:
    """Whatever a test leaves mounted under tmp_path is unmounted, even when it fails."""
    yield
    for point in sorted(overlay.overlay_mounts(tmp_path), key=lambda p: len(p.parts), reverse=True):
        overlay.unmount(point)


@needs_root
def test_overlay_job_code_is_private_and_kept(tmp_path: Path, unmount_all: None) -> None:
    snapshot = make_snapshot(tmp_path / "snap")
    mounter = CodeMounter(tmp_path / "scratch", True, tmp_path, tmp_path / "dirs")
    one, two = tmp_path / "jobs" / "1" / "code", tmp_path / "jobs" / "2" / "code"
    one.parent.mkdir(parents=True)
    two.parent.mkdir(parents=True)
    assert mounter.provide("overlay", snapshot, one) == "overlay"
    assert mounter.provide("overlay", snapshot, two) == "overlay"
    assert os.path.ismount(one) and tree(one) == FILES
    (one / "new.txt").write_text("made by job 1")
    (one / "pkg" / "deep" / "new.txt").write_text("deep")
    (one / "pkg" / "b.txt").unlink()
    (one / "a.txt").unlink()  # replaced, as editors and `sed -i` do
    (one / "a.txt").write_text("changed a")
    assert tree(snapshot) == FILES  # the snapshot never changes
    assert tree(two) == FILES  # nor does another job's view of it
    assert mounter.release(snapshot, one) and mounter.release(snapshot, two)
    assert not os.path.ismount(one) and not layers(one).exists()
    expected = {"a.txt": b"changed a", "new.txt": b"made by job 1", "pkg/deep/c.txt": b"snapshot c\n",
                "pkg/deep/new.txt": b"deep"}
    assert tree(one) == expected  # what the job saw, a plain directory after the end
    assert tree(two) == FILES
    # untouched files are the snapshot's own (hardlinks), not copies
    assert (one / "pkg" / "deep" / "c.txt").stat().st_ino == (snapshot / "pkg" / "deep" / "c.txt").stat().st_ino
    assert not mounter.release(snapshot, one)  # released once


@needs_root
def test_overlay_on_overlay_falls_back_to_a_copy(tmp_path: Path, unmount_all: None) -> None:
    """FLOYD_ROOT on an overlay (as in some containers): the kernel refuses an upper layer there."""
    outer = [tmp_path / d for d in ("lower", "upper", "work", "root")]
    for d in outer:
        d.mkdir()
    overlay.mount_overlay(*outer)
    root = outer[3]
    snapshot = make_snapshot(root / "snap")
    mounter = CodeMounter(root / "scratch", True, root, root / "dirs")
    assert not mounter.works("overlay")
    code = root / "jobs" / "1" / "code"
    code.parent.mkdir(parents=True)
    mode = mounter.provide("overlay", snapshot, code)
    assert mode in ("reflink", "copy") and not os.path.ismount(code)
    (code / "pkg" / "new.txt").write_text("x")
    assert tree(snapshot) == FILES
    assert not mounter.release(snapshot, code) and (code / "pkg" / "new.txt").exists()


def test_no_overlay_where_the_runtime_cannot_see_it(tmp_path: Path) -> None:
    """A Docker engine outside the bridge's mount namespace would bind an empty directory."""
    snapshot = make_snapshot(tmp_path / "snap")
    mounter = CodeMounter(tmp_path / "scratch", False, tmp_path, tmp_path / "dirs")
    code = tmp_path / "code"
    assert mounter.provide("overlay", snapshot, code) in ("reflink", "copy")
    assert tree(code) == FILES and not os.path.ismount(code)


WRITER = {"job.py": b"import os, pathlib, sys\n"
                    b"code = pathlib.Path(os.environ['FLOYD_CODE'])\n"
                    b"print('sees', sorted(p.name for p in code.iterdir()), flush=True)\n"
                    b"print('reads', (code / 'data' / 'in.txt').read_text().strip(), flush=True)\n"
                    b"(code / 'data' / 'made.txt').write_text(sys.argv[1])\n"
                    b"(code / 'top.txt').write_text(sys.argv[1])\n",
          "data/in.txt": b"input line\n"}


def run_writer(platform: Platform, tmp_path: Path, user_name: str) -> tuple[dict, dict, str, str]:
    """Two jobs of one snapshot, one after the other, each writing into its /floyd/code."""
    user = platform.user(user_name)
    first = submit(user, "code", WRITER, tmp_path, command="python job.py one")["job"]
    done1 = wait_state(user, first["id"], {"succeeded", "failed", "lost"}, timeout=120)
    body = {"project": f"{user_name}/code", "snapshot": first["snapshot"], "command": "python job.py two"}
    second = user.api("POST", "jobs", json=body).json()["job"]
    done2 = wait_state(user, second["id"], {"succeeded", "failed", "lost"}, timeout=120)
    logs = [user.api("GET", f"jobs/{j['id']}/logs").text for j in (first, second)]
    assert done1["state"] == done2["state"] == "succeeded", logs
    return done1, done2, logs[0], logs[1]


def check_job_dirs(platform: Platform, user: str, number: int, written: str) -> None:
    code = platform.root / "jobs" / user / "code" / str(number) / "code"
    assert not os.path.ismount(code) and not layers(code).exists()
    assert (code / "top.txt").read_text() == written and (code / "data" / "made.txt").read_text() == written
    assert (code / "data" / "in.txt").read_text() == "input line\n"
    snapshots = list((platform.root / "snapshots" / user / "code").glob("*/data"))
    assert snapshots and all(sorted(p.name for p in d.iterdir()) == ["in.txt"] for d in snapshots)


def test_job_writes_code_by_overlay(platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    done1, done2, log1, log2 = run_writer(platform, tmp_path, "coder")
    mode = "overlay" if os.geteuid() == 0 else done1["code_mount"]
    assert done1["code_mount"] == done2["code_mount"] == mode
    assert "reads input line" in log1 and "sees ['data', 'job.py']" in log1
    assert "sees ['data', 'job.py']" in log2  # the first job's top.txt is its own
    check_job_dirs(platform, "coder", 1, "one")
    check_job_dirs(platform, "coder", 2, "two")
    assert overlay.overlay_mounts(platform.root / "jobs") == []


@pytest.fixture(scope="module")
def copy_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform.create(tmp_path_factory.mktemp("copycode"), {},
                        TEST_BRIDGE_CONFIG + 'c.JobPreparer.code_mount = "copy"\n')
    p.start()
    yield p
    p.stop()


def test_config_forces_a_copy(copy_platform: Platform, workspace_image: str, tmp_path: Path) -> None:
    done1, done2, log1, log2 = run_writer(copy_platform, tmp_path, "copier")
    assert done1["code_mount"] == done2["code_mount"] == "copy"
    assert "reads input line" in log1 and "sees ['data', 'job.py']" in log2
    check_job_dirs(copy_platform, "copier", 1, "one")
    assert overlay.overlay_mounts(copy_platform.root) == []
