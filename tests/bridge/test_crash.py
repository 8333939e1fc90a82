"""kill -9 the bridge in the middle of a commit, between its database commit and its tree: no
half version is ever visible, and the next start builds the committed version's tree."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import requests

from floyd.client import FloydClient
from floyd.client.progress import ProgressObserver
from floyd.client.transfer import build_manifest, upload
from tests.support.platform import Platform, write_tree

FILES = 20_000


def test_kill_between_commit_and_tree_build(platform: Platform, tmp_path: Path) -> None:
    user = platform.user("crash")
    user.api("POST", "datasets", json={"name": "many"})
    tree = write_tree(tmp_path / "many", {f"d{i % 50}/f{i}.txt": f"{i}".encode() for i in range(FILES)})
    client = FloydClient(platform.url, user.token)
    manifest, by_hash = build_manifest(tree, ProgressObserver(), None)
    status = client.start_upload("crash", "many", manifest, "crash test")
    from floyd.client.transfer import batches, pack_stream
    for batch in batches([(h, by_hash[h]) for h in status["missing"]]):
        client.send_pack(status["id"], pack_stream(batch, ProgressObserver()))

    ds_dir = platform.root / "datasets" / "crash" / "many"
    outcome: dict[str, object] = {}

    def commit() -> None:
        try:
            outcome["response"] = user.api("POST", f"uploads/{status['id']}/commit", timeout=60)
        except requests.RequestException as exc:
            outcome["error"] = exc

    pid = platform.bridge_pid()
    worker = threading.Thread(target=commit)
    worker.start()
    deadline = time.monotonic() + 30
    killed_mid_commit = False
    while time.monotonic() < deadline and worker.is_alive():
        if any(p.name.startswith(".staging-") for p in ds_dir.iterdir()):
            os.kill(pid, signal.SIGKILL)
            killed_mid_commit = True
            break
    worker.join(60)
    assert killed_mid_commit, f"the commit finished before it could be interrupted: {outcome}"
    response = outcome.get("response")
    assert response is None or response.status_code == 201 or response.status_code >= 500

    # JupyterHub restarts its managed service; the bridge recovers at start-up. The commit
    # answers before the tree is built (storage/trees.py), so the kill fell between the two: the
    # version is committed whole and recovery builds its tree; the upload is gone with it.
    time.sleep(1)
    platform.wait_bridge(90)
    items = user.api("GET", "datasets/crash/many/versions").json()["items"]
    assert [(v["number"], v["file_count"]) for v in items] == [(1, FILES)]
    assert [p.name for p in ds_dir.iterdir()] == ["1"]
    assert sum(len(files) for _, _, files in os.walk(ds_dir / "1")) == FILES
    assert user.api("GET", f"uploads/{status['id']}").status_code == 404

    # And starting over with the same tree finds it complete: nothing sent again.
    again = upload(client, "crash", "many", tree)
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
