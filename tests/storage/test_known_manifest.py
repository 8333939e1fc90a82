"""``parse_manifest`` with the files of a stored version: entries equal to them are taken as they
are, every other entry is validated as before, and no clash slips through either way."""

from __future__ import annotations

import pytest

from jobs_bridge.errors import BadRequest
from jobs_bridge.storage import manifest as manifest_module
from jobs_bridge.storage.manifest import parse_manifest

H1, H2 = "a" * 64, "b" * 64


def rec(path: str, size: int = 3, hexd: str = H1, mtime: float | None = 5.0) -> dict:
    out: dict = {"path": path, "size": size, "hash": f"sha256:{hexd}"}
    if mtime is not None:
        out["mtime"] = mtime
    return out


KNOWN = {"d/a.txt": (3, f"sha256:{H1}", 5.0), "d/b.txt": (3, f"sha256:{H1}", None), "top": (3, f"sha256:{H2}", 5.0)}


def test_known_entries_skip_validation_and_others_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = manifest_module.clean_relpath
    monkeypatch.setattr(manifest_module, "clean_relpath", lambda v, what="path": checked.append(v) or real(v, what))
    raw = [rec("d/a.txt"), rec("d/b.txt", mtime=None), rec("top", hexd=H2), rec("new.txt")]
    entries = parse_manifest(raw, 100, 1 << 20, KNOWN)
    assert [e.path for e in entries] == ["d/a.txt", "d/b.txt", "new.txt", "top"]
    assert checked == ["new.txt"]
    assert entries == parse_manifest(raw, 100, 1 << 20)  # the same entries as without ``known``


@pytest.mark.parametrize("item", [
    {**rec("d/a.txt"), "size": True},  # True == 1 in Python; still not a size
    {**rec("d/a.txt"), "mtime": True},
    {**rec("d/a.txt"), "extra": 1},
    {**rec("d/a.txt"), "size": -3},
])
def test_an_entry_that_only_looks_known_is_validated(item: dict) -> None:
    known = {**KNOWN, "d/a.txt": (1, f"sha256:{H1}", 1.0)} if item.get("size") is True else KNOWN
    with pytest.raises(BadRequest):
        parse_manifest([item], 100, 1 << 20, known)


@pytest.mark.parametrize("raw", [
    [rec("d/a.txt"), rec("d")],  # a new file named like a known file's directory
    [rec("top"), rec("top/x")],  # a new file inside a known file
    [rec("d/a.txt"), rec("d/a.txt")],  # twice
])
def test_clashes_with_known_files_are_refused(raw: list[dict]) -> None:
    with pytest.raises(BadRequest, match="twice|as a file and as a directory"):
        parse_manifest(raw, 100, 1 << 20, KNOWN)

