"""Resumable uploads: manifest first, then only the blobs the caller has not stored yet.

Protocol (see docs/datasets.md):
1. ``POST …/uploads`` with the manifest → upload id, missing hashes, partial offsets.
   Posting the same manifest again finds the same open upload: that is how a client resumes.
2. Small blobs go in tar packs (``POST /uploads/<id>/pack``, member name = hex hash);
   large ones by ``PUT /uploads/<id>/blobs/sha256:<hex>`` with an ``Upload-Offset`` header,
   appending to a part file that survives a cut connection or a bridge restart.
3. ``POST /uploads/<id>/commit`` materializes the version and makes it visible atomically.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.datasets import changed_dirs, deltas, owners, upload_files
from jobs_bridge.datasets.blobindex import BlobIndex
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.datasets.receivers import PackReceiver, PartWriter
from jobs_bridge.datasets.records import version_json
from jobs_bridge.errors import BadRequest, Conflict, NotFound
from jobs_bridge.inputs import find_job
from jobs_bridge.jobs import states
from jobs_bridge.orm import Dataset, DatasetVersion, Upload
from jobs_bridge.projects import ProjectManager
from jobs_bridge.storage.blobs import BlobStore, parse_hash
from jobs_bridge.storage.manifest import Entry, Known, parse_directories, parse_manifest, version_id
from jobs_bridge.storage.materialize import remove_tree
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.storage.trees import TREES
from jobs_bridge.validate import json_bool

OnCommit = Callable[[Session, DatasetVersion], None]
Kept = tuple[list[Entry], bool, "deltas.Planned | None"]  # an upload's parsed entries, allow_duplicate, its delta
RECENT_MANIFESTS = 4  # parsed manifests kept for their commit (a 100k-file one is read again in ~0.5 s)


class UploadManager(LoggingConfigurable):
    """Open uploads of dataset versions and project snapshots, and their limits."""

    max_files_per_version = Integer(1_000_000, help="Most files one dataset version may hold.").tag(config=True)
    max_file_size = Integer(1 << 40, help="Largest single file accepted, in bytes (default 1 TiB).").tag(config=True)
    max_request_bytes = Integer(
        64 << 30, help="Largest streamed request body (a pack of blobs or one blob upload), in bytes (default 64 GiB)."
    ).tag(config=True)
    upload_expiry_days = Float(
        7.0, help="Days an unfinished upload may be resumed; older ones are forgotten at start-up."
    ).tag(config=True)

    def __init__(self, *, datasets: DatasetManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datasets = datasets
        self._hashers: dict[tuple[str, str], tuple[int, hashlib._Hash]] = {}
        self._guard = threading.Lock()
        # the newest uploads' parsed manifests, so a commit need not read manifest.json again
        self._recent: OrderedDict[str, Kept] = OrderedDict()
        self._indexes: OrderedDict[str, BlobIndex] = OrderedDict()  # open uploads' blob indexes, newest last
        self.received = owners.ReceivedRecorder(datasets.sessions)

    @property
    def layout(self) -> StorageLayout:
        return self.datasets.layout

    @property
    def store(self) -> BlobStore:
        return self.datasets.store

    # -- sessions ----------------------------------------------------------------------
    def start(
        self, caller: Caller, owner: str, name: str, manifest: object, message: str = "", allow_duplicate: object = False,
        kind: str = "data", body: bytes | None = None, base: object = None,
    ) -> tuple[int, dict]:
        """Open (or find again, to resume) the upload of ``manifest``; ``body``: the request's JSON
        object that holds it, kept as the upload's manifest file. With ``base`` (a version the
        client names) ``manifest`` is only the directories changed since (``changed_dirs.py``)."""
        self.received.wait()  # packs answered before this request: recorded (owners.ReceivedRecorder)
        allow_duplicate = json_bool(allow_duplicate, "allow_duplicate")
        with self.datasets.sessions.begin() as s:
            if kind == "code":
                ProjectManager.find(s, caller, owner, name, write=True)
                ds = self.datasets.code_dataset(s, owner, name)
            else:
                ds = self.datasets.find(s, caller, owner, name, write=True)
            if not isinstance(message, str) or len(message) > 10_000:
                raise BadRequest("'message' must be a string of at most 10,000 characters.")
            # the version this one is compared with: entries equal to its files skip validation (and upload)
            base_pk = deltas.newest_base(s, ds.id)
            known = self.datasets.base_files.known(s, ds.id, base_pk)
            held: set[str] = set()  # blobs of the version named as ``base``: its writers may read them
            if base is None:
                entries = parse_manifest(manifest, self.max_files_per_version, self.max_file_size, known)
            else:
                stored = changed_dirs.base_entries(s, ds.id, base, base_pk, known)
                entries = parse_directories(manifest, stored, self.max_files_per_version, self.max_file_size, known)
                held, body = {e.hexdigest for e in stored}, None  # the request alone does not list the files
            vid = version_id(entries)
            total = sum(e.size for e in entries)
            same = s.scalar(
                select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id, DatasetVersion.version_id == vid)
                .order_by(DatasetVersion.number.desc()).limit(1)
            )
            if same is not None and not allow_duplicate:
                return 200, {"duplicate_of": version_json(ds, same), "id": None, "version_id": vid}
            self.datasets.check_quota(s, ds.owner, total)
            up = s.scalar(
                select(Upload).where(
                    Upload.dataset_id == ds.id, Upload.version_id == vid, Upload.created_by == caller.name
                )
            )
            resumed = up is not None
            if up is None:
                up = Upload(
                    id=uuid.uuid4().hex, dataset_id=ds.id, created_by=caller.name, version_id=vid,
                    message=message, total_size=total, file_count=len(entries),
                )
                upload_files.write(self.layout.upload_dir(up.id), entries, allow_duplicate, body)
                planned = deltas.plan_from_known(s, base_pk, known, entries, self.datasets.delta_max_fraction)
                self._remember(up.id, (entries, bool(allow_duplicate), planned))
                s.add(up)
            else:
                up.message = message or up.message
            s.flush()
            return (200 if resumed else 201), self._status(s, up, {e.hexdigest: e for e in entries}, resumed, known, held)

    def same_version(self, caller: Caller, owner: str, name: str, vid: object) -> dict:
        """The unchanged-tree shortcut: the newest version of the dataset whose id is ``vid``
        (``{"duplicate_of": …}``, as ``start`` answers a duplicate manifest), or a 404: then
        the client sends its manifest. One indexed query, whatever the version holds."""
        if not isinstance(vid, str) or not vid.startswith("sha256:"):
            raise BadRequest("'version_id' must be 'sha256:' followed by 64 lowercase hex digits.")
        parse_hash(vid)
        with self.datasets.sessions() as s:
            ds = self.datasets.find(s, caller, owner, name, write=True)
            same = s.scalar(
                select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id, DatasetVersion.version_id == vid)
                .order_by(DatasetVersion.number.desc()).limit(1)
            )
            if same is None:
                raise NotFound(f"{owner}/{name} has no version {vid}; send the manifest.")
            return {"duplicate_of": version_json(ds, same), "id": None, "version_id": vid}

    def status(self, caller: Caller, upload_id: str) -> dict:
        self.received.wait()
        with self.datasets.sessions() as s:
            up = self._find(s, caller, upload_id)
            known = self.datasets.base_files.known(s, up.dataset_id, deltas.newest_base(s, up.dataset_id))
            return self._status(s, up, self._by_hash(up.id), True, known)

    def abort(self, caller: Caller, upload_id: str) -> None:
        with self.datasets.sessions.begin() as s:
            up = self._find(s, caller, upload_id)
            s.delete(up)
        self._forget(upload_id)
        remove_tree(self.layout.upload_dir(upload_id))

    def _find(self, s: Session, caller: Caller, upload_id: str) -> Upload:
        if not isinstance(upload_id, str) or not upload_id.isalnum() or len(upload_id) > 32:
            raise NotFound("Upload not found.")
        up = s.get(Upload, upload_id)
        if up is None or not (caller.admin or up.created_by == caller.name):
            raise NotFound(f"Upload {upload_id} not found; it may have been committed or aborted. Start it again.")
        return up

    def _by_hash(self, upload_id: str) -> dict[str, Entry]:
        entries, _ = self._entries(upload_id)
        return {e.hexdigest: e for e in entries}

    def _remember(self, upload_id: str, kept: Kept) -> None:
        with self._guard:
            self._recent[upload_id] = kept
            while len(self._recent) > RECENT_MANIFESTS:
                self._recent.popitem(last=False)

    def _kept(self, upload_id: str) -> Kept | None:
        with self._guard:
            return self._recent.get(upload_id)

    def _entries(self, upload_id: str) -> tuple[list[Entry], bool]:
        kept = self._kept(upload_id)
        if kept is not None:
            return kept[0], kept[1]
        return upload_files.read(self.layout.upload_dir(upload_id))

    def _index(self, upload_id: str) -> BlobIndex:
        """The upload's blob index, kept between its packs (read and bucketed once, not per pack)."""
        with self._guard:
            found = self._indexes.get(upload_id)
        if found is None:
            found = upload_files.index(self.layout.upload_dir(upload_id))
            with self._guard:
                self._indexes[upload_id] = found
                while len(self._indexes) > RECENT_MANIFESTS:
                    self._indexes.popitem(last=False)
        return found

    def _forget(self, upload_id: str) -> None:
        with self._guard:
            self._recent.pop(upload_id, None)
            self._indexes.pop(upload_id, None)
            for key in [k for k in self._hashers if k[0] == upload_id]:
                del self._hashers[key]

    def _missing(self, s: Session, caller_name: str, by_hash: dict[str, Entry], known: Known | None = None,
                 held: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Blobs the caller has not proven to hold and neither the ``known`` version nor ``held``
        (blobs of versions the dataset's writers may read) holds. An ownership row implies the
        blob file: rows are written after a blob is published and deleted before it is removed."""
        held = held.union(stored[1][7:] for stored in known.values()) if known else held
        hashes = sorted(h for h in by_hash if h not in held)
        owned = owners.owned(s, caller_name, hashes)
        return [h for h in hashes if h not in owned]

    def _status(self, s: Session, up: Upload, by_hash: dict[str, Entry], resumed: bool, known: Known | None,
                held: set[str] | frozenset[str] = frozenset()) -> dict:
        missing = self._missing(s, up.created_by, by_hash, known, held)
        partial = {}
        directory = self.layout.upload_dir(up.id)
        # One listing instead of a stat per missing blob (100,000 for a first upload of small
        # files); the few part files are looked at by name.
        parts = [n[:-5] for n in _names(directory) if n.endswith(".part")]
        for h in parts:
            if h in by_hash:
                try:
                    partial[f"sha256:{h}"] = os.stat(directory / f"{h}.part").st_size
                except FileNotFoundError:  # completed and published meanwhile
                    continue
        missing_set = set(missing)
        partial = {k: v for k, v in partial.items() if k[7:] in missing_set}
        missing_bytes = sum(by_hash[h].size for h in missing) - sum(partial.values())
        return {
            "id": up.id,
            "version_id": up.version_id,
            "resumed": resumed,
            "file_count": up.file_count,
            "total_size": up.total_size,
            "missing": [f"sha256:{h}" for h in missing],
            "missing_bytes": missing_bytes,
            "partial": partial,
        }

    def add_owners(self, s: Session, owner: str, hashes: list[str]) -> None:
        owners.add(s, owner, hashes)

    def cleanup(self) -> list[str]:
        """Forget uploads nobody finished within ``upload_expiry_days``, and upload directories that
        no upload row owns (a deleted dataset's). Their blobs stay until the owner's next
        version needs them, or are collected with unreferenced blobs."""
        actions: list[str] = []
        cutoff = datetime.now(timezone.utc) - timedelta(days=self.upload_expiry_days)
        with self.datasets.sessions.begin() as s:
            for up in list(s.scalars(select(Upload))):
                created = up.created_at if up.created_at.tzinfo else up.created_at.replace(tzinfo=timezone.utc)
                if created < cutoff:
                    s.delete(up)
                    actions.append(f"expired upload {up.id}")
            live = set(s.scalars(select(Upload.id)))
        for directory in self.layout.uploads.iterdir() if self.layout.uploads.is_dir() else []:
            if directory.name not in live:
                remove_tree(directory)
                actions.append(f"removed leftover {directory}")
        return actions

    # -- receiving blobs ---------------------------------------------------------------
    def pack_receiver(self, caller: Caller, upload_id: str) -> PackReceiver:
        with self.datasets.sessions() as s:
            up = self._find(s, caller, upload_id)
        return PackReceiver(self, up.id, up.created_by, self._index(up.id))

    def part_path(self, caller: Caller, upload_id: str, hash_value: str) -> tuple[Path, Entry]:
        hexd = parse_hash(hash_value)
        with self.datasets.sessions() as s:
            up = self._find(s, caller, upload_id)
        size = self._index(up.id).size(hexd)
        if size is None:
            raise NotFound(f"sha256:{hexd} is not in this upload's manifest.")
        return self.layout.upload_dir(up.id) / f"{hexd}.part", Entry("", size, hexd)

    def blob_offset(self, caller: Caller, upload_id: str, hash_value: str) -> tuple[int, int]:
        self.received.wait()
        part, entry = self.part_path(caller, upload_id, hash_value)
        with self.datasets.sessions() as s:
            if not self._missing(s, caller.name, {entry.hexdigest: entry}):
                return entry.size, entry.size
        return (part.stat().st_size if part.exists() else 0), entry.size

    def part_writer(self, caller: Caller, upload_id: str, hash_value: str, offset: int) -> PartWriter:
        self.received.wait()
        part, entry = self.part_path(caller, upload_id, hash_value)
        current = part.stat().st_size if part.exists() else 0
        with self.datasets.sessions() as s:
            if not self._missing(s, caller.name, {entry.hexdigest: entry}):
                raise Conflict(f"sha256:{entry.hexdigest} is already stored; nothing to send.")
        if offset != current:
            raise Conflict(f"Upload-Offset is {offset} but the server holds {current} bytes of this blob; resume from {current}.")
        return PartWriter(self, upload_id, caller.name, entry, part, current)

    def hasher_for(self, upload_id: str, hexd: str, offset: int) -> hashlib._Hash | None:
        with self._guard:
            saved = self._hashers.get((upload_id, hexd))
        if offset == 0:
            return hashlib.sha256()
        if saved and saved[0] == offset:
            return saved[1]
        return None

    def save_hasher(self, upload_id: str, hexd: str, offset: int, h: hashlib._Hash | None) -> None:
        with self._guard:
            if h is None:
                self._hashers.pop((upload_id, hexd), None)
            else:
                self._hashers[(upload_id, hexd)] = (offset, h)

    def record_received(self, owner: str, hashes: list[str]) -> None:
        self.received.record(owner, hashes)

    # -- commit ------------------------------------------------------------------------
    def commit(self, caller: Caller, upload_id: str) -> dict:
        self.received.wait()
        with self.datasets.sessions() as s:
            up = self._find(s, caller, upload_id)
            ds = s.get(Dataset, up.dataset_id)
            assert ds is not None
            owner, name, kind, uploader, message, vid = ds.owner, ds.name, ds.kind, up.created_by, up.message, up.version_id
        entries, allow_duplicate = self._entries(upload_id)
        kept = self._kept(upload_id)
        result = self.commit_entries(caller, owner, name, kind, entries, message, uploader, upload_id, allow_duplicate,
                                     vid=vid, verify=True, planned=kept[2] if kept else None)
        self._forget(upload_id)
        remove_tree(self.layout.upload_dir(upload_id))
        return result  # the manifest is trimmed away once its tree is built (storage/trees.py)

    def commit_entries(self, caller: Caller, owner: str, name: str, kind: str, entries: list[Entry], message: str,
                       uploader: str, upload_id: str | None = None, allow_duplicate: bool = False,
                       source_job: int | None = None, on_commit: OnCommit | None = None, vid: str = "",
                       verify: bool = False, planned: deltas.Planned | None = None) -> dict:
        """Make ``entries`` (all in the store already) the dataset's next version, atomically: its
        rows (a delta against a full base, ``deltas.plan``) in one database commit (``on_commit``
        adds rows of its own to that same transaction: a model version's source), its tree built
        after the answer (``storage/trees.py``). ``verify``: the uploader must hold every blob the
        base does not (an upload's; the base's the dataset's writer may read anyway).
        ``source_job`` (a job's id) records the run whose output it is, for lineage; ``planned``:
        the delta its upload worked out at the start, used while its base is still the base."""
        with self.datasets.lock(owner, name):
            vid = vid or version_id(entries)
            total = sum(e.size for e in entries)
            with self.datasets.sessions() as s:
                ds = self.datasets.find(s, caller, owner, name, write=True, kind=kind)
                same = s.scalar(
                    select(DatasetVersion.number).where(DatasetVersion.dataset_id == ds.id, DatasetVersion.version_id == vid)
                )
                if same is not None and not allow_duplicate:
                    raise Conflict(f"{owner}/{name}:{same} already has exactly these files.")
                self.datasets.check_quota(s, owner, total)
                # Numbers are never reused, not even the number of a deleted newest version.
                highest = s.scalar(select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == ds.id)) or 0
                number = max(highest, ds.last_number) + 1
                rows = deltas.plan(s, ds.id, entries, self.datasets.delta_max_fraction, planned)
                owned = owners.owned(s, uploader, rows.new_hashes) if verify else set(rows.new_hashes)
                unsent = {h for h in rows.new_hashes if h not in owned}  # unless a version holds them (``start``)
                unsent -= deltas.present(s, ds.id, unsent) if unsent else set()
            if unsent:
                raise Conflict(f"{len(unsent)} file(s) of this upload have not been sent yet; run the upload again to resume.")
            target = self.layout.dataset_dir(owner, name, kind) / str(number)
            remove_tree(target)  # no committed row has this number: anything here is a crash leftover
            synced = self.store.sync_soon()  # blobs are written without a flush each: on disk before
            with self.datasets.sessions.begin() as s:  # the version exists, flushed while its rows are written
                v = DatasetVersion(
                    dataset_id=ds.id, number=number, version_id=vid, message=message, created_by=caller.name,
                    size=total, file_count=len(entries), source_job_id=source_job, base_pk=rows.base_pk)
                s.add(v)
                s.flush()
                deltas.write(s, v.id, rows.rows)
                if owner != uploader:
                    self.add_owners(s, owner, rows.new_hashes)
                if upload_id:
                    up_row = s.get(Upload, upload_id)
                    if up_row is not None:
                        s.delete(up_row)
                ds_row = s.get(Dataset, ds.id)
                assert ds_row is not None
                ds_row.last_number = number
                if on_commit is not None:
                    on_commit(s, v)
                answer = version_json(ds_row, v)
                synced.result()
            TREES.schedule(self.store, entries, target)
            return answer

    def link_tree(self, top: Path) -> list[Entry]:
        """The files under ``top`` (or ``top`` itself, a file), hashed and hardlinked into the store
        (no bytes copied), as sorted entries; symlinks and special files are left out."""
        if top.is_file() and not top.is_symlink():
            found = [(top, top.name)]
        else:
            found = [(Path(d) / f, str((Path(d) / f).relative_to(top)).replace(os.sep, "/"))
                     for d, _dirs, files in os.walk(top) for f in files]
        self.datasets.output_hashes.wait(top)
        entries: list[Entry] = []
        for path, rel in found:
            if path.is_symlink() or not path.is_file():
                continue
            digest = self.datasets.output_hashes.digest(path)
            self.store.link_in(path, digest)
            st = path.stat()
            entries.append(Entry(rel, st.st_size, digest, st.st_mtime))
        entries.sort(key=lambda e: e.path)
        return entries

    def from_job_output(self, caller: Caller, owner: str, name: str, job: str, message: str = "") -> dict:
        """A finished job's output becomes a dataset version without copying bytes: its files
        (read-only since the job ended) are hashed and hardlinked into the store."""
        parts = job.strip("/").removesuffix("/output").split("/")
        if len(parts) != 3:
            raise BadRequest(f"Invalid job {job!r}: use OWNER/PROJECT/NUMBER (e.g. alice/mnist-cnn/12).")
        with self.datasets.sessions() as s:
            self.datasets.find(s, caller, owner, name, write=True)
            row = find_job(s, caller, *parts)
            if row.state not in states.FINISHED:
                raise Conflict(f"Job {job} is {row.state}; its output becomes a dataset once it has ended.")
        entries = self.link_tree(self.layout.job_output(row.owner, row.project, row.number))
        if not entries:
            raise Conflict(f"Job {'/'.join(parts)} wrote no output files.")
        with self.datasets.sessions.begin() as s:
            self.add_owners(s, caller.name, [e.hexdigest for e in entries])
        return self.commit_entries(caller, owner, name, "data", entries, message or f"output of job {job}", caller.name,
                                   source_job=row.id)


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []
