"""Uploads run with the cyclic collector paused, and leave it as they found it."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest

from floyd.client import transfer
from floyd.client.gcpause import gc_paused


def test_nested_and_concurrent_pauses_resume_once() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    leave = threading.Event()

    def other_upload() -> None:
        with gc_paused():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other_upload)
    with gc_paused():
        t.start()
        inside.wait(10)
    assert not gc.isenabled()  # the other upload still runs
    leave.set()
    t.join()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_upload_pauses_the_collector_and_resumes_it_after_a_failure(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    def scan_tree(*_args: object, **_kwargs: object) -> None:
        seen.append(gc.isenabled())
        raise OSError("disk gone")

    monkeypatch.setattr(transfer, "scan_tree", scan_tree)
    with pytest.raises(OSError, match="disk gone"):
        transfer.upload(None, "alice", "ds", tmp_path)  # type: ignore[arg-type]
    assert seen == [False] and gc.isenabled()
