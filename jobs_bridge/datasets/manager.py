"""Datasets and their committed versions: create, list, share, read files, diff, delete."""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from traitlets import Dict, Float, Integer
from traitlets.config import LoggingConfigurable

from floyd.formatting import fmt_bytes
from jobs_bridge.auth.identity import Caller
from jobs_bridge.auth.rules import check_access
from jobs_bridge.datasets import deltas, layers, listing
from jobs_bridge.datasets.basecache import BaseFiles
from jobs_bridge.datasets.records import dataset_json, version_json
from jobs_bridge.datasets.versiondiff import SizedDiff, version_diff
from jobs_bridge.errors import BadRequest, Conflict, NotFound, TooLarge
from jobs_bridge.names import check_name, check_owner
from jobs_bridge.orm import BlobOwner, Dataset, DatasetVersion, Upload, VersionFile
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.hashcache import OutputHashes
from jobs_bridge.storage.manifest import Diff, Entry
from jobs_bridge.storage.materialize import remove_tree
from jobs_bridge.storage.paths import StorageLayout, clean_relpath
from jobs_bridge.storage.trees import TREES, build
from jobs_bridge.validate import id_number, json_bool

log = logging.getLogger("jobs_bridge.datasets")

# A hook later subsystems (jobs) register to say a version is in use and must not be
# deleted without force: it returns a human-readable reason, or None.
VersionUseCheck = Callable[[Session, DatasetVersion], "str | None"]


GiB = 1 << 30
KIND_NOUN = {"data": "Dataset", "code": "Project", "model": "Model"}  # Dataset.kind as a user reads it


class DatasetManager(LoggingConfigurable):
    """Datasets and their versions, under the per-user storage quota."""

    user_quota_bytes = Integer(
        100 * GiB, help="Default dataset storage quota per user, in bytes (sum of the sizes of their versions; "
        "default 100 GiB). Code snapshots of projects are not counted."
    ).tag(config=True)
    delta_max_fraction = Float(
        0.2, help="A new version stores only the files that differ from its base version while they are at "
        "most this fraction of its files (default 0.2); past it the version stores every file and becomes "
        "the base of the next ones. 0 stores every version whole."
    ).tag(config=True)
    user_quotas = Dict(
        value_trait=Integer(), help="Per-user quota overrides in bytes, e.g. {'alice': 500 * 2**30}."
    ).tag(config=True)
    base_cache_files = Integer(
        20_000, help="Files of base versions kept in memory between uploads, in all (default 20,000, some 6 MiB): "
        "the next upload of a dataset whose base is kept starts without reading it again. 0 keeps none."
    ).tag(config=True)

    def __init__(self, *, sessions: sessionmaker[Session], layout: StorageLayout, store: BlobStore,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.layout = layout
        self.store = store
        self.use_checks: list[VersionUseCheck] = []
        # hashes of finished jobs' outputs (filled when a job ends), for versions made from them
        self.output_hashes = OutputHashes()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.base_files = BaseFiles(self.base_cache_files)  # what uploads compare with (basecache.py)

    def quota_for(self, user: str) -> int:
        """Bytes of dataset versions ``user`` may keep."""
        return int(self.user_quotas.get(user, self.user_quota_bytes))

    # -- helpers -----------------------------------------------------------------------
    def lock(self, owner: str, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((owner, name), threading.Lock())

    @staticmethod
    def find(s: Session, caller: Caller, owner: str, name: str, *, write: bool = False, kind: str = "data") -> Dataset:
        check_owner(owner)
        noun = KIND_NOUN.get(kind, "Dataset")
        check_name(name, f"{noun.lower()} name")
        ds = s.scalar(select(Dataset).where(Dataset.owner == owner, Dataset.name == name, Dataset.kind == kind))
        what = f"{noun} {owner}/{name}"
        if ds is None:
            raise NotFound(f"{what} not found.")
        check_access(caller, ds.owner, ds.public, what, write=write)
        return ds

    @staticmethod
    def find_version(s: Session, ds: Dataset, number: int | str) -> DatasetVersion:
        q = select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
        if number in ("latest", None, ""):
            v = s.scalar(q.order_by(DatasetVersion.number.desc()).limit(1))
            if v is None:
                raise NotFound(f"Dataset {ds.owner}/{ds.name} has no versions yet; upload one with `floyd data upload`.")
            return v
        n = id_number(number, "version", "give a number or 'latest'.")
        v = s.scalar(q.where(DatasetVersion.number == n))
        if v is None:
            raise NotFound(f"{KIND_NOUN.get(ds.kind, 'Dataset')} {ds.owner}/{ds.name} has no version {n}.")
        return v

    def usage(self, s: Session, owner: str) -> int:
        total = s.scalar(
            select(func.coalesce(func.sum(DatasetVersion.size), 0))
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(Dataset.owner == owner, Dataset.kind == "data")  # code snapshots are not counted
        )
        return int(total or 0)

    def check_quota(self, s: Session, owner: str, adding: int) -> None:
        limit = self.quota_for(owner)
        used = self.usage(s, owner)
        if used + adding > limit:
            raise TooLarge(
                f"Storage quota exceeded for {owner}: {fmt_bytes(used)} used of {fmt_bytes(limit)}, "
                f"this version adds {fmt_bytes(adding)}. Delete old versions (`floyd data delete NAME:N`) "
                "or ask an admin to raise c.DatasetManager.user_quotas."
            )

    # -- datasets --------------------------------------------------------------------
    def create(self, caller: Caller, name: str, description: str = "", public: object = False) -> dict:
        check_name(name, "dataset name")
        public = json_bool(public, "public")
        if not isinstance(description, str) or len(description) > 10_000:
            raise BadRequest("'description' must be a string of at most 10,000 characters.")
        with self.sessions.begin() as s:
            exists = s.scalar(select(Dataset.id).where(Dataset.owner == caller.name, Dataset.name == name,
                                                       Dataset.kind == "data"))
            if exists:
                raise Conflict(f"You already have a dataset named {name}; upload a new version to it instead.")
            ds = Dataset(owner=caller.name, name=name, description=description, public=public)
            s.add(ds)
            s.flush()
            self.layout.dataset_dir(caller.name, name).mkdir(parents=True, exist_ok=True)
            return dataset_json(ds, None, 0)

    def list(self, caller: Caller, owner: str | None = None, public: bool = False) -> list[dict]:
        with self.sessions() as s:
            q = select(Dataset).where(Dataset.kind == "data").order_by(Dataset.owner, Dataset.name)
            if owner is not None:
                check_owner(owner)
                q = q.where(Dataset.owner == owner)
            elif public:
                q = q.where(Dataset.public.is_(True))
            elif not caller.admin:
                q = q.where(Dataset.owner == caller.name)
            out = []
            for ds in s.scalars(q):
                if not (caller.admin or ds.owner == caller.name or ds.public):
                    continue
                out.append(self._summary(s, ds))
            return out

    def _summary(self, s: Session, ds: Dataset) -> dict:
        count = s.scalar(select(func.count()).where(DatasetVersion.dataset_id == ds.id)) or 0
        latest = s.scalar(
            select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
            .order_by(DatasetVersion.number.desc()).limit(1)
        )
        return dataset_json(ds, latest, count)

    def get(self, caller: Caller, owner: str, name: str) -> dict:
        with self.sessions() as s:
            return self._summary(s, self.find(s, caller, owner, name))

    def update(self, caller: Caller, owner: str, name: str, changes: dict) -> dict:
        unknown = set(changes) - {"public", "description"}
        if unknown:
            raise BadRequest(f"Cannot change {', '.join(sorted(unknown))}; only 'public' and 'description' can change.")
        with self.sessions.begin() as s:
            ds = self.find(s, caller, owner, name, write=True)
            if "public" in changes:
                ds.public = json_bool(changes["public"], "public")
            if "description" in changes:
                if not isinstance(changes["description"], str) or len(changes["description"]) > 10_000:
                    raise BadRequest("'description' must be a string of at most 10,000 characters.")
                ds.description = changes["description"]
            s.flush()
            return self._summary(s, ds)

    def delete_dataset(self, caller: Caller, owner: str, name: str) -> None:
        with self.sessions.begin() as s:
            ds = self.find(s, caller, owner, name, write=True)
            if s.scalar(select(func.count()).where(DatasetVersion.dataset_id == ds.id)):
                raise Conflict(f"Dataset {owner}/{name} still has versions; delete them first.")
            s.execute(delete(Upload).where(Upload.dataset_id == ds.id))
            s.delete(ds)
        remove_tree(self.layout.dataset_dir(owner, name))

    def code_dataset(self, s: Session, owner: str, project: str) -> Dataset:
        """The hidden dataset holding a project's code snapshots (made on first use)."""
        ds = s.scalar(select(Dataset).where(Dataset.owner == owner, Dataset.name == project, Dataset.kind == "code"))
        if ds is None:
            ds = Dataset(owner=owner, name=project, kind="code", description="code snapshots", public=False)
            s.add(ds)
            s.flush()
            self.layout.dataset_dir(owner, project, "code").mkdir(parents=True, exist_ok=True)
        return ds

    def snapshot_number(self, s: Session, owner: str, project: str, snapshot: str, what: str) -> int:
        """The version number of a code snapshot (its directory), or a 404 saying whose it was."""
        ds = self.code_dataset(s, owner, project)
        number = s.scalar(select(DatasetVersion.number).where(DatasetVersion.dataset_id == ds.id,
                                                              DatasetVersion.version_id == snapshot).limit(1))
        if number is None:
            raise NotFound(f"The code snapshot {snapshot[:19]}… of {what} no longer exists.")
        return number

    # -- versions --------------------------------------------------------------------
    def versions(self, caller: Caller, owner: str, name: str) -> builtins.list[dict]:
        with self.sessions() as s:
            ds = self.find(s, caller, owner, name)
            rows = s.scalars(
                select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id).order_by(DatasetVersion.number)
            )
            return [version_json(ds, v) for v in rows]

    def version(self, caller: Caller, owner: str, name: str, number: int | str) -> dict:
        with self.sessions() as s:
            ds = self.find(s, caller, owner, name)
            return version_json(ds, self.find_version(s, ds, number))

    def entries(self, caller: Caller, owner: str, name: str, number: int | str,
                kind: str = "data") -> tuple[dict, builtins.list[Entry]]:
        with self.sessions() as s:
            ds = self.find(s, caller, owner, name, kind=kind)
            v = self.find_version(s, ds, number)
            return version_json(ds, v), layers.entries(s, layers.of(v))

    def list_files(
        self, caller: Caller, owner: str, name: str, number: int | str, path: str = "", recursive: bool = False,
        after: str = "", limit: int = listing.DEFAULT_LIMIT,
    ) -> dict:
        """One page of the files (and, unless recursive, directories) under ``path``; ``next``
        is the cursor to pass as ``after`` for the page that follows (None after the last)."""
        rel = clean_relpath(path) if path else ""
        cursor = clean_relpath(after, "cursor 'after'") if after else ""
        with self.sessions() as s:
            ds = self.find(s, caller, owner, name)
            v = self.find_version(s, ds, number)
            info = version_json(ds, v)
            listed, page = listing.list_page(s, layers.of(v), info["ref"], rel, cursor, limit, recursive, v.version_id)
        return {"version": info, "path": listed, "files": page.files, "next": page.next}

    def select_for_download(
        self, caller: Caller, owner: str, name: str, number: int | str, path: str = "", kind: str = "data"
    ) -> tuple[dict, builtins.list[Entry], bool]:
        """Entries under ``path`` and whether ``path`` names a single file: one indexed read of
        the file or the directory's range, not the whole version (a file of a 100k-file version)."""
        if not path:
            info, entries = self.entries(caller, owner, name, number, kind)
            return info, entries, False
        rel = clean_relpath(path)
        with self.sessions() as s:
            ds = self.find(s, caller, owner, name, kind=kind)
            v = self.find_version(s, ds, number)
            info, entry = version_json(ds, v), layers.single_file(s, layers.of(v), rel)
            if entry is not None:
                return info, [entry], True
            inside = layers.files_under(s, layers.of(v), rel)
        if not inside:
            raise NotFound(f"{info['ref']} has no file or directory {path!r}.")
        return info, inside, False

    def read_head(self, caller: Caller, owner: str, name: str, number: int | str, path: str,
                  limit: int) -> tuple[dict, Entry, bytes]:
        """A file's entry and its first ``limit`` bytes (the dataset page's preview)."""
        rel = clean_relpath(path)
        with self.sessions() as s:
            ds = self.find(s, caller, owner, name)
            v = self.find_version(s, ds, number)
            info, entry = version_json(ds, v), layers.single_file(s, layers.of(v), rel)
        if entry is None:
            raise NotFound(f"{info['ref']} has no file {path!r}.")
        with open(self.store.file(entry.hexdigest), "rb") as f:
            return info, entry, f.read(limit)

    def snapshot_entries(self, caller: Caller, owner: str, project: str, snapshot: str) -> builtins.list[Entry]:
        """The files of a project's code snapshot (for ``floyd clone``)."""
        with self.sessions() as s:
            ds = self.find(s, caller, owner, project, kind="code")
            v = s.scalar(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id,
                                                      DatasetVersion.version_id == snapshot).limit(1))
            if v is None:
                raise NotFound(f"Project {owner}/{project} has no code snapshot {snapshot[:19]}.")
            return layers.entries(s, layers.of(v))

    def diff(self, caller: Caller, owner: str, name: str, a: int | str, b: int | str) -> dict:
        """The database compares the two versions (``versiondiff``); only differing paths come back."""
        with self.sessions() as s:
            ds = self.find(s, caller, owner, name)
            va, vb = self.find_version(s, ds, a), self.find_version(s, ds, b)
            info_a, info_b = version_json(ds, va), version_json(ds, vb)
            sized = version_diff(s, layers.of(va), layers.of(vb)) if va.version_id != vb.version_id else SizedDiff(Diff([], [], []), {})
        d = sized.diff
        return {"from": info_a, "to": info_b, "added": d.added, "removed": d.removed, "changed": d.changed,
                "files": sized.files(), "summary": sized.summary()}

    def delete_version(self, caller: Caller, owner: str, name: str, number: int | str, force: bool = False,
                       kind: str = "data") -> dict:
        with self.lock(owner, name):
            with self.sessions.begin() as s:
                ds = self.find(s, caller, owner, name, write=True, kind=kind)
                v = self.find_version(s, ds, number)
                for check in self.use_checks:
                    reason = check(s, v)
                    if reason and not force:
                        raise Conflict(f"{owner}/{name}:{v.number} is kept because {reason}; pass force to delete it anyway.")
                info = version_json(ds, v)
                hashes = layers.hashes(s, v.id)
                deltas.rebase(s, v, self.delta_max_fraction)  # its dependents read as before without it
                s.delete(v)
                s.flush()
                still_used: set[str] = set()
                hash_list = sorted(hashes)
                for i in range(0, len(hash_list), 500):
                    chunk = hash_list[i : i + 500]
                    still_used.update(s.scalars(select(VersionFile.hash).where(VersionFile.hash.in_(chunk)).distinct()))
                garbage = hashes - still_used
                garbage_list = sorted(garbage)
                for i in range(0, len(garbage_list), 500):
                    s.execute(delete(BlobOwner).where(BlobOwner.hash.in_(garbage_list[i : i + 500])))
            tree = self.layout.version_dir(owner, name, info["number"], kind)
            TREES.forget(tree)
            remove_tree(tree)  # code snapshots are never deleted
            for h in garbage:
                self.store.delete(h)
            info["blobs_removed"] = len(garbage)
            return info

    # -- start-up recovery -------------------------------------------------------------
    def recover(self) -> builtins.list[str]:
        """Make the tree agree with the database after a crash: a version directory exists
        exactly for each committed version; staging leftovers and orphans go away."""
        actions = self.store.journal.recover()  # first: the trees rebuilt below link the journals' blobs
        for kind, root in (("data", self.layout.datasets), ("code", self.layout.snapshots),
                           ("model", self.layout.models)):
            actions += self._recover_tree(kind, root)
        for leftover in self.layout.tmp.glob("blob-*"):
            leftover.unlink(missing_ok=True)
        return actions

    def _recover_tree(self, kind: str, root: Path) -> builtins.list[str]:
        actions: builtins.list[str] = []
        with self.sessions() as s:
            committed = {
                (o, n, num)
                for o, n, num in s.execute(
                    select(Dataset.owner, Dataset.name, DatasetVersion.number)
                    .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id).where(Dataset.kind == kind)
                )
            }
            known = set(s.execute(select(Dataset.owner, Dataset.name).where(Dataset.kind == kind)).all())
        newest: dict[tuple[str, str], int] = {}
        for o, n, num in committed:
            newest[(o, n)] = max(num, newest.get((o, n), 0))
        if root.is_dir():
            for owner_dir in root.iterdir():
                if not owner_dir.is_dir():
                    continue
                for ds_dir in owner_dir.iterdir():
                    if not ds_dir.is_dir():
                        continue
                    key = (owner_dir.name, ds_dir.name)
                    for child in ds_dir.iterdir():
                        if child.name.startswith(".staging-"):
                            remove_tree(child)
                            actions.append(f"removed unfinished {child}")
                        elif child.name.isdigit() and (*key, int(child.name)) not in committed:
                            # Only the one crash leftover is removed: a version renamed into place
                            # whose database commit never happened (always the next number). Anything
                            # else means the database is not the one this tree belongs to: keep it.
                            if key in known and int(child.name) > newest.get(key, 0):
                                remove_tree(child)
                                actions.append(f"removed uncommitted {child}")
                            else:
                                actions.append(f"kept {child}: no committed version in the database "
                                               "(is FLOYD_DB_URL the right database?)")
        for owner, name, number in sorted(committed):
            target = self.layout.version_dir(owner, name, number, kind)
            if not target.exists():
                try:
                    self._rematerialize(owner, name, number, target, kind)
                    actions.append(f"rebuilt {target}")
                except OSError as exc:
                    actions.append(f"could not rebuild {target}: {exc} (a blob is missing; restore blobs/ from backup)")
        return actions

    def _rematerialize(self, owner: str, name: str, number: int, target: Path, kind: str = "data") -> None:
        with self.sessions() as s:
            v = s.scalar(select(DatasetVersion).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                         .where(Dataset.owner == owner, Dataset.name == name, Dataset.kind == kind,
                                DatasetVersion.number == number))
            entries = layers.entries(s, layers.of(v)) if v is not None else []
        build(self.store, entries, target)

