"""The fast canonical manifest is byte for byte the documented json.dumps form (the version id)."""

from __future__ import annotations

import json
import random

from jobs_bridge.storage.manifest import Entry, canonical_bytes


def reference(entries: list[Entry]) -> bytes:
    ordered = sorted(entries, key=lambda e: e.path)
    return json.dumps([e.as_dict() for e in ordered], sort_keys=True, separators=(",", ":")).encode()


def test_canonical_bytes_equal_json_dumps() -> None:
    rng = random.Random(3)
    names = ["a.txt", 'q"uote', "sp ace/x", "é/ü", "日本/語", "emoji😀.bin", "tab\u2028sep", "z" * 200, "A", "a/b/c"]
    entries = [Entry(n, rng.choice([0, 1, 1024, 1 << 40]), f"{rng.getrandbits(256):064x}", rng.random())
               for n in names]
    rng.shuffle(entries)
    assert canonical_bytes(entries) == reference(entries)
    assert canonical_bytes([]) == reference([]) == b"[]"
