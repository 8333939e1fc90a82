"""Delta versions read back exactly what was committed: a chain of 30 single-file changes, each
version checked whole, page by page (with directory sums), file by file and diffed against the
others, before and after deleting bases and middle versions."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from jobs_bridge.datasets import deltas, layers, listing
from jobs_bridge.datasets.versiondiff import version_diff
from jobs_bridge.errors import NotFound
from jobs_bridge.orm import Dataset, DatasetVersion, VersionFile
from jobs_bridge.storage.manifest import Entry, diff

Manifest = dict[str, Entry]


def commit(s: Session, ds: Dataset, number: int, files: Manifest, fraction: float = 0.2) -> DatasetVersion:
    entries = [files[p] for p in sorted(files)]
    plan = deltas.plan(s, ds.id, entries, fraction)
    v = DatasetVersion(dataset_id=ds.id, number=number, version_id=f"v{number}", created_by="alice",
                       file_count=len(entries), base_pk=plan.base_pk)
    s.add(v)
    s.flush()
    deltas.write(s, v.id, plan.rows)
    return v


def chain(rng: random.Random) -> list[Manifest]:
    """30 versions, each one file changed, added or removed from the one before (and a touch)."""
    files = {f"d{i % 4}/{'sub/' if i % 3 == 0 else ''}f{i}.txt": i for i in range(40)}
    current: Manifest = {p: Entry(p, n, f"{n:064x}", 1000.0 + n) for p, n in files.items()}
    out = [dict(current)]
    for step in range(1, 30):
        current = dict(current)
        kind = step % 4
        if kind == 0:
            p = rng.choice(sorted(current))
            del current[p]
        elif kind == 1:
            p = f"d{rng.randrange(5)}/new{step}.bin"
            current[p] = Entry(p, 7 * step, f"{1000 + step:064x}", None)
        elif kind == 2:
            p = rng.choice(sorted(current))
            current[p] = Entry(p, current[p].size + 1, f"{2000 + step:064x}", current[p].mtime)
        else:  # only the modification time: a row of its own, the same content
            p = rng.choice(sorted(current))
            current[p] = Entry(p, current[p].size, current[p].hexdigest, 5.0 * step)
        out.append(current)
    return out


def top_level(files: Manifest, prefix: str) -> list[dict]:
    """What a non-recursive listing of ``prefix`` must show, in its order."""
    items: dict[str, dict] = {}
    for p in sorted(files):
        if not p.startswith(prefix):
            continue
        rest = p[len(prefix):]
        if "/" not in rest:
            items[p] = listing.entry_json(files[p])
            continue
        d = prefix + rest.split("/", 1)[0]
        item = items.setdefault(d + "/", {"path": d, "type": "directory", "size": 0, "file_count": 0})
        item["size"] += files[p].size
        item["file_count"] += 1
    return [items[k] for k in sorted(items)]


def pages(s: Session, v: DatasetVersion, path: str, recursive: bool, limit: int) -> list[dict]:
    out: list[dict] = []
    after = ""
    while True:
        _, page = listing.list_page(s, layers.of(v), "ref", path, after, limit, recursive, "")
        out += page.files
        if page.next is None:
            return out
        after = page.next


def check_version(s: Session, v: DatasetVersion, files: Manifest) -> None:
    lay = layers.of(v)
    assert layers.entries(s, lay) == [files[p] for p in sorted(files)]
    assert pages(s, v, "", True, 3) == [listing.entry_json(files[p]) for p in sorted(files)]
    dirs = sorted({p.rsplit("/", 1)[0] for p in files} | {"d0/sub"})
    for prefix in ["", *dirs]:
        want = top_level(files, prefix + "/" if prefix else "")
        if want:
            assert pages(s, v, prefix, False, 2) == want, prefix
            under = [files[p] for p in sorted(files) if p.startswith(prefix + "/")]
            assert layers.files_under(s, lay, prefix) == under if prefix else True
    for p in list(files)[:10] + ["d9/none.txt"]:
        assert layers.single_file(s, lay, p) == files.get(p)


def test_chain_of_30_single_file_changes_reads_back_every_version(session: Session) -> None:
    rng = random.Random(19)
    manifests = chain(rng)
    ds = Dataset(owner="alice", name="d")
    session.add(ds)
    session.flush()
    versions = [commit(session, ds, n + 1, files) for n, files in enumerate(manifests)]
    kinds = [v.base_pk is None for v in versions]
    assert kinds[0] and sum(kinds) >= 2 and kinds.count(False) >= 20  # deltas, and full versions now and then
    assert max(session.scalar(select(func.count()).where(VersionFile.version_pk == v.id)) or 0
               for v in versions if v.base_pk) <= 8  # at most 0.2 of ~40 files
    for v, files in zip(versions, manifests, strict=True):
        check_version(session, v, files)
    for i, j in [(0, 29), (29, 0), (3, 4), (10, 25), (12, 12), (5, 17), (28, 29)]:
        want = diff({p: e.hexdigest for p, e in manifests[i].items()}, {p: e.hexdigest for p, e in manifests[j].items()})
        sized = version_diff(session, layers.of(versions[i]), layers.of(versions[j]))
        assert (sized.diff.added, sized.diff.removed, sized.diff.changed) == (want.added, want.removed, want.changed)
        for path, (a, b) in sized.sizes.items():
            assert a == (manifests[i][path].size if path in manifests[i] else None)
            assert b == (manifests[j][path].size if path in manifests[j] else None)


def test_deleting_a_base_or_a_middle_version_keeps_the_others_whole(session: Session) -> None:
    manifests = chain(random.Random(7))
    ds = Dataset(owner="alice", name="d")
    session.add(ds)
    session.flush()
    versions = {n + 1: commit(session, ds, n + 1, files) for n, files in enumerate(manifests)}
    kept = {n: manifests[n - 1] for n in versions}
    bases = [n for n, v in versions.items() if v.base_pk is None and
             session.scalar(select(func.count()).where(DatasetVersion.base_pk == v.id))]
    middle = next(n for n, v in versions.items() if v.base_pk is not None and n not in (1, 30))
    for n in (bases[0], middle, bases[-1]):
        v = versions.pop(n)
        kept.pop(n)
        deltas.rebase(session, v, 0.2)
        session.execute(delete(VersionFile).where(VersionFile.version_pk == v.id))
        session.delete(v)
        session.flush()
        for m, w in versions.items():
            check_version(session, w, kept[m])
            assert w.base_pk is None or w.base_pk in {x.id for x in versions.values()}
    newest = max(versions)
    assert layers.entries(session, layers.of(versions[newest])) == sorted(kept[newest].values(), key=lambda e: e.path)


def test_an_empty_version_and_a_path_that_is_not_there(session: Session) -> None:
    ds = Dataset(owner="alice", name="d")
    session.add(ds)
    session.flush()
    first = commit(session, ds, 1, {f"a/{i}": Entry(f"a/{i}", i, f"{i:064x}") for i in range(10)})
    empty = commit(session, ds, 2, {})
    assert first.base_pk is None and empty.base_pk is None and layers.entries(session, layers.of(empty)) == []
    with pytest.raises(NotFound):
        listing.list_page(session, layers.of(first), "ref", "b", "", 10, False, "")
