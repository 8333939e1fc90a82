"""kill -9 the bridge in the middle of a commit, between its database commit and its tree (while
its blobs are written out of their journals, or while the tree is built): no half version is ever
visible, and the next start writes the blobs and builds the committed version's tree."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from floyd.client import FloydClient
from floyd.client.progress import ProgressObserver
from floyd.client.transfer import build_manifest, upload
from tests.support.platform import Platform, write_tree

FILES = 20_000


@pytest.mark.parametrize("moment", ["draining journals", "building the tree"])
def test_kill_between_commit_and_tree_build(platform: Platform, tmp_path: Path, moment: str) -> None:
    """The commit answers once its rows and the journals holding its blobs are on disk; the
    blobs become files and the tree is built after (storage/journal.py, storage/trees.py)."""
    user = platform.user("crash")
    name = "many" if moment == "building the tree" else "journaled"
    user.api("POST", "datasets", json={"name": name})
    tree = write_tree(tmp_path / name, {f"d{i % 50}/f{i}-{name}.txt": f"{i} {name}".encode() for i in range(FILES)})
    client = FloydClient(platform.url, user.token)
    manifest, by_hash = build_manifest(tree, ProgressObserver(), None)
    status = client.start_upload("crash", name, manifest, "crash test")
    from floyd.client.transfer import batches, pack_stream
    for batch in batches([(h, by_hash[h]) for h in status["missing"]]):
        client.send_pack(status["id"], pack_stream(batch, ProgressObserver()))

    ds_dir = platform.root / "datasets" / "crash" / name
    journals = platform.root / "blobs" / "journal"
    assert list(journals.glob("*.journal")), "the pack's small blobs were not journaled"
    outcome: dict[str, object] = {}

    def commit() -> None:
        try:
            outcome["response"] = user.api("POST", f"uploads/{status['id']}/commit", timeout=60)
        except requests.RequestException as exc:
            outcome["error"] = exc

    def now() -> bool:
        if moment == "building the tree":
            return any(p.name.startswith(".staging-") for p in ds_dir.iterdir())
        return "response" in outcome and bool(list(journals.glob("*.journal")))

    pid = platform.bridge_pid()
    worker = threading.Thread(target=commit)
    worker.start()
    deadline = time.monotonic() + 30
    killed = False
    while time.monotonic() < deadline and not (ds_dir / "1").exists():
        if now():
            os.kill(pid, signal.SIGKILL)
            killed = True
            break
    worker.join(60)
    assert killed, f"the commit and its tree finished before the bridge could be killed {moment}: {outcome}"
    response = outcome.get("response")
    assert response is None or response.status_code == 201 or response.status_code >= 500

    # JupyterHub restarts its managed service; the bridge recovers at start-up: the journals are
    # written out as blob files (each verified again), the committed version's tree is built.
    time.sleep(1)
    platform.wait_bridge(90)
    items = user.api("GET", f"datasets/crash/{name}/versions").json()["items"]
    assert [(v["number"], v["file_count"]) for v in items] == [(1, FILES)]
    assert [p.name for p in ds_dir.iterdir()] == ["1"]
    assert sum(len(files) for _, _, files in os.walk(ds_dir / "1")) == FILES
    assert list(journals.iterdir()) == []
    assert (ds_dir / "1" / "d7" / f"f7-{name}.txt").read_text() == f"7 {name}"
    assert user.api("GET", f"uploads/{status['id']}").status_code == 404

    # And starting over with the same tree finds it complete: nothing sent again.
    again = upload(client, "crash", name, tree)
    assert again.duplicate and again.sent_bytes == 0


def test_unfinished_uploads_expire_at_start_up(tmp_path: Path) -> None:
    p = Platform.create(tmp_path / "expiry", bridge_config="c.UploadManager.upload_expiry_days = 0\n")
    p.start()
    try:
        user = p.user("lazy")
        user.api("POST", "datasets", json={"name": "never-finished"})
        manifest = [{"path": "a", "size": 1, "hash": "sha256:" + "a" * 64}]
        up = user.api("POST", "datasets/lazy/never-finished/uploads", json={"manifest": manifest}).json()
        assert (p.root / "tmp" / "uploads" / up["id"]).is_dir()
        os.kill(p.bridge_pid(), signal.SIGKILL)  # the restarted bridge cleans up at start-up
        time.sleep(1)
        p.wait_bridge(90)
        assert user.api("GET", f"uploads/{up['id']}").status_code == 404, p.log_tail(60)
        assert not (p.root / "tmp" / "uploads" / up["id"]).exists()
    finally:
        p.stop()
