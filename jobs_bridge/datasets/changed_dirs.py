"""An upload sent as the directories that changed since a version the client names.

A client that uploaded a tree before keeps each directory's digest (``floyd/client/heads.py``);
the next upload sends only the directories whose digest changed, each with every file now in it,
and names the version it compares with (``{"number", "version_id"}``: numbers are never given
twice in a dataset, the id guards against a version made again under another number). The
bridge takes that version's other files as they are stored: a one-file change of a 10,000-file
tree sends, parses and validates one directory. The version made is the same as from the whole
manifest, id included.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs_bridge.datasets import layers
from jobs_bridge.errors import BadRequest, Conflict
from jobs_bridge.orm import DatasetVersion
from jobs_bridge.storage.blobs import parse_hash
from jobs_bridge.storage.manifest import Entry, Known


def base_entries(s: Session, dataset_id: int, base: object, base_pk: int | None, known: Known | None) -> list[Entry]:
    """The files of the version ``base`` names (in no particular order); a 409 when the dataset no longer has
    it (the client then sends its whole manifest). ``known``: the files of the full version
    ``base_pk``, read already, which a version stored whole or as a delta over it starts from."""
    number, vid = _named(base)
    row = s.execute(select(DatasetVersion.id, DatasetVersion.base_pk, DatasetVersion.version_id)
                    .where(DatasetVersion.dataset_id == dataset_id, DatasetVersion.number == number)).first()
    if row is None or row.version_id != vid:
        raise Conflict(f"This dataset no longer has version {number} as {vid}; send the whole manifest.")
    if known is None or base_pk not in (row.id, row.base_pk):
        return layers.entries(s, layers.Layers(row.id, row.base_pk))
    merged = {p: Entry(p, size, h[7:], mtime) for p, (size, h, mtime) in known.items()}
    if row.id == base_pk:
        return list(merged.values())
    for path, size, hexd, mtime, removed in layers.own_rows(s, row.id):
        if removed:
            merged.pop(path, None)
        else:
            merged[path] = Entry(path, size, hexd, mtime)
    return list(merged.values())


def _named(base: object) -> tuple[int, str]:
    number = base.get("number") if isinstance(base, dict) else None
    vid = base.get("version_id") if isinstance(base, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1 or not isinstance(vid, str):
        raise BadRequest("'base' must be {\"number\": <version number>, \"version_id\": \"sha256:<hex>\"}: "
                         "the version the changed directories are compared with.")
    parse_hash(vid)
    return number, vid
