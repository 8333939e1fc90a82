"""Dataset uploads and downloads on top of FloydClient.

Upload: hash (cached), send the manifest, then only what the server lacks: small files in
tar packs (one request for thousands of files), large ones as resumable blob uploads.
Running the same upload again after an interruption resumes it and sends nothing twice.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, cast

from floyd.client.errors import FloydAPIError, FloydClientError
from floyd.client.gcpause import gc_paused
from floyd.client.hashing import hash_files
from floyd.client.hashwork import BLOCK, CHUNK, member_header
from floyd.client.heads import TreeHeads
from floyd.client.http import FloydClient
from floyd.client.ignore import IgnoreRules
from floyd.client.manifest import LocalManifest
from floyd.client.progress import ProgressObserver
from floyd.client.spool import PackSpool
from floyd.client.statcache import StatCache
from floyd.client.treescan import LocalFile, TreeScan, scan, scan_tree

if TYPE_CHECKING:  # requests loads with the first request, not with the CLI
    import requests

LARGE_FILE = 8 << 20  # files from this size go as resumable single-blob uploads
PACK_BYTES = 64 << 20  # a pack closes after this many bytes…
PACK_FILES = 4096  # …or this many files
MTIME_HEADER = "X-Floyd-Mtime"  # a single file's download: its recorded modification time (tars carry their own)


@dataclass
class UploadResult:
    version: dict
    duplicate: bool
    resumed: bool
    files: int
    total_bytes: int
    sent_files: int
    sent_bytes: int

    def facts(self) -> dict:
        """What the front ends report about an upload (``--json``, the Lab's answers)."""
        return {"files": self.files, "total_bytes": self.total_bytes, "sent_files": self.sent_files,
                "sent_bytes": self.sent_bytes, "duplicate": self.duplicate}


def build_manifest(root: Path, observer: ProgressObserver, cache: StatCache | None,
                   keep: Callable[[str], bool] | None = None) -> tuple[LocalManifest, dict[str, LocalFile]]:
    """The manifest of ``root`` and a file for each ``sha256:<hex>`` hash (what a caller that sends
    blobs itself needs)."""
    files = scan(root, observer)
    if keep is not None:
        files = [f for f in files if keep(f.path)]
    manifest = _manifest(files, cache, observer)
    return manifest, {f"sha256:{h}": f for h, f in manifest.by_hash().items()}


def _manifest(files: list[LocalFile], cache: StatCache | None, observer: ProgressObserver,
              spool: PackSpool | None = None) -> LocalManifest:
    hashes = hash_files(files, cache, observer, spool=spool)
    digests = [hashes[f.path] for f in files]
    del hashes
    return LocalManifest(files, digests)


@gc_paused()
def upload(client: FloydClient, owner: str, name: str, root: Path, message: str = "",
           allow_duplicate: bool = False, observer: ProgressObserver | None = None,
           cache: StatCache | None = None) -> UploadResult:
    """``root`` as a new version of the dataset: nothing sent when the tree is unchanged since its
    last upload (``heads.py``), only what the server lacks otherwise."""
    observer = observer or ProgressObserver()
    tree = scan_tree(Path(root), observer)
    heads = TreeHeads(cache, client.url, owner, name, Path(root)) if cache is not None else None
    same = heads.unchanged(client, tree) if heads is not None and not allow_duplicate else None
    if same is not None:
        return UploadResult(same, True, False, tree.count, tree.total_bytes, 0, 0)
    return upload_scanned(client, owner, name, tree, heads, message, allow_duplicate, observer, cache)


@gc_paused()
def upload_scanned(client: FloydClient, owner: str, name: str, tree: TreeScan, heads: TreeHeads | None,
                   message: str, allow_duplicate: bool, observer: ProgressObserver,
                   cache: StatCache | None) -> UploadResult:
    """A scanned tree hashed, its manifest sent, then what the server lacks; ``heads`` remembers the
    version made (the CLI scans and asks ``heads`` itself, so an unchanged tree never imports this).
    A tree uploaded before sends only its changed directories (``heads.Changes``), unless most of it
    changed or the bridge cannot take them (one from before, or the base version deleted)."""
    post = partial(client.start_upload, owner, name, message=message, allow_duplicate=allow_duplicate)
    changes = heads.changes(tree) if heads is not None else None
    with closing(PackSpool()) as spool:
        status = None
        if changes is not None and changes["directories"]:  # none: the base was found gone, or allow_duplicate
            files = tree.files_in(changes["directories"])
            if len(files) * 2 <= tree.count:
                manifest = _manifest(files, cache, observer, spool)
                status = _start_changes(lambda m: post(m, base=changes), manifest)
        if status is None:
            manifest = _manifest(tree.files, cache, observer, spool)
            status = start(post, manifest)
        result = send_missing(client, status, manifest, observer, spool, (tree.count, tree.total_bytes))
    if heads is not None and result.version.get("id"):
        heads.remember(tree, result.version, made=not result.duplicate)
    return result


def _start_changes(post: Callable[[LocalManifest], dict], manifest: LocalManifest) -> dict | None:
    """Start an upload from the changed directories; None when the whole manifest must go instead:
    a bridge from before this request (400), the base version gone (409), or a blob to send that
    is not in these directories (the base version's, which the bridge did not count as held)."""
    try:
        status = post(manifest)
    except FloydAPIError as exc:
        if exc.status in (400, 409):
            return None
        raise
    held = {f"sha256:{d}" for d in manifest.digests}
    return status if held.issuperset(status.get("missing", ())) else None


@gc_paused()
def upload_code(client: FloydClient, owner: str, project: str, root: Path, keep: Callable[[str], bool] | None = None,
                observer: ProgressObserver | None = None, cache: StatCache | None = None,
                extra: Mapping[str, bytes] | None = None, message: str = "") -> UploadResult:
    """THE code uploader: ``root`` as a snapshot of ``project`` (``keep``: what to send, by default
    what ``.floydignore`` leaves), plus ``extra`` files at the top (a ``%%floyd_run`` cell's script).

    The same protocol as datasets, so an unchanged project sends no file bytes. The extra files
    go into the snapshot only, never into ``root``: they are written to a temporary directory so
    they are hashed and sent like any other file. Without a ``cache`` the stat cache is opened
    if it can be (a read-only home only makes hashing slower)."""
    observer = observer or ProgressObserver()
    root = Path(root)
    if not root.is_dir():
        raise FloydClientError(f"The code directory {root} does not exist.")
    keep = keep or IgnoreRules.for_directory(root).keep
    extra = extra or {}
    own_cache = cache is None
    cache = _open_stat_cache() if own_cache else cache
    try:
        with tempfile.TemporaryDirectory(prefix="floyd-extra-") as tmp:
            files = [f for f in scan(root, observer) if keep(f.path) and f.path not in extra]
            files += [_extra_file(Path(tmp), rel, data) for rel, data in extra.items()]
            files.sort(key=lambda f: f.path)
            with closing(PackSpool()) as spool:
                manifest = _manifest(files, cache, observer, spool)
                status = start(lambda m: client.start_snapshot(owner, project, m, message), manifest)
                return send_missing(client, status, manifest, observer, spool)
    finally:
        if own_cache and cache is not None:
            cache.close()


def start(post: Callable[[LocalManifest], dict], manifest: LocalManifest) -> dict:
    """Start an upload; a bridge from before file times were kept refuses the ``mtime`` key, and gets
    the manifest without it (its downloads then carry no file times)."""
    try:
        return post(manifest)
    except FloydAPIError as exc:
        if exc.status != 400 or "exactly 'path', 'size' and 'hash'" not in exc.message:
            raise
    manifest.with_mtime = False
    return post(manifest)


def keep_mtime(path: Path, header: str | None) -> None:
    """Give a downloaded file the modification time its upload recorded (``X-Floyd-Mtime``)."""
    try:
        mtime = float(header) if header else None
    except ValueError:
        mtime = None
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _open_stat_cache() -> StatCache | None:
    try:
        return StatCache()
    except Exception:  # a read-only home: hash everything, it is only slower
        return None


def _extra_file(tmp: Path, rel: str, data: bytes) -> LocalFile:
    path = tmp / rel.replace("/", "_")
    path.write_bytes(data)
    st = path.stat()
    return LocalFile(rel, str(path), st.st_size, (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))


def send_missing(client: FloydClient, status: dict, manifest: LocalManifest, observer: ProgressObserver,
                 spool: PackSpool | None = None, counts: tuple[int, int] | None = None) -> UploadResult:
    """What the server lacks sent, then the commit; ``counts``: the tree's files and bytes when
    ``manifest`` holds only its changed directories."""
    files, total = counts or (len(manifest), manifest.total_bytes)
    if status.get("duplicate_of"):
        return UploadResult(status["duplicate_of"], True, False, files, total, 0, 0)
    if status.get("resumed"):
        done = total - status["missing_bytes"]
        observer.note(f"Resuming an interrupted upload: {len(status['missing'])} file(s) left, "
                      f"{done} bytes already on the server.")
    upload_id = status["id"]
    names: list[str] = status.pop("missing")  # "sha256:<hex>", each once
    partial: dict[str, int] = status.get("partial", {})
    observer.stage("send", status["missing_bytes"], "bytes")
    large = _large_files(manifest, names)
    wanted = set(names).difference(h for h, _ in large)
    sent_bytes = 0
    if spool is not None:  # the small files kept while hashing: nothing read again
        if wanted:
            wanted = spool.send(wanted, lambda body: client.send_pack(upload_id, body), observer, PACK_FILES, PACK_BYTES)
        sent_bytes += spool.sent_bytes
        spool.close()  # its pages are dropped unwritten, not flushed by the commit's sync of the disk
    by_hash = manifest.by_hash() if wanted else {}
    for batch in batches([(h, by_hash[h[7:]]) for h in names if h in wanted]):
        client.send_pack(upload_id, pack_stream(batch, observer))
        sent_bytes += sum(f.size for _, f in batch)
    for h, f in large:
        offset = partial.get(h, 0)
        client.put_blob(upload_id, h, offset, f.size - offset, file_chunks(f, offset, observer))
        sent_bytes += f.size - offset
    observer.stage("commit", 1, "steps")
    version = client.commit_upload(upload_id)
    observer.advance("commit", 1)
    return UploadResult(version, False, bool(status.get("resumed")), files, total, len(names), sent_bytes)


def _large_files(manifest: LocalManifest, names: list[str]) -> list[tuple[str, LocalFile]]:
    """The missing blobs sent one by one, resumably: files of ``LARGE_FILE`` bytes or more (a few;
    100,000 pairs for every missing blob cost 0.25 s of a 100,000-file upload)."""
    big = {f"sha256:{d}": f for f, d in zip(manifest.files, manifest.digests, strict=True) if f.size >= LARGE_FILE}
    return [(h, big[h]) for h in names if h in big] if big else []


def batches(items: list[tuple[str, LocalFile]]) -> Iterator[list[tuple[str, LocalFile]]]:
    batch: list[tuple[str, LocalFile]] = []
    size = 0
    for item in items:
        batch.append(item)
        size += item[1].size
        if size >= PACK_BYTES or len(batch) >= PACK_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _check_unchanged(f: LocalFile, st: os.stat_result) -> None:
    if (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size) != f.key:
        raise FloydClientError(f"{f.path} changed while uploading; run the upload again.")


def pack_stream(batch: list[tuple[str, LocalFile]], observer: ProgressObserver) -> Iterator[bytes]:
    """A tar stream whose members are the blobs, named by hex hash, in ~1 MiB chunks."""
    buf = bytearray()
    for h, f in batch:
        buf += member_header(h.split(":", 1)[1], f.size)
        with open(f.abspath, "rb", buffering=0) as fh:
            _check_unchanged(f, os.fstat(fh.fileno()))
            remaining = f.size
            while remaining:
                block = fh.read(min(CHUNK, remaining))
                if not block:
                    raise FloydClientError(f"{f.path} shrank while uploading; run the upload again.")
                buf += block
                remaining -= len(block)
                if len(buf) >= CHUNK:
                    yield bytes(buf)
                    observer.advance("send", len(buf))
                    buf.clear()
        buf += b"\0" * ((-f.size) % BLOCK)
    buf += b"\0" * (2 * BLOCK)
    yield bytes(buf)
    observer.advance("send", len(buf))


def file_chunks(f: LocalFile, offset: int, observer: ProgressObserver) -> Iterator[bytes]:
    with open(f.abspath, "rb", buffering=0) as fh:
        _check_unchanged(f, os.fstat(fh.fileno()))
        fh.seek(offset)
        while True:
            block = fh.read(CHUNK)
            if not block:
                return
            yield block
            observer.advance("send", len(block))


def download(client: FloydClient, owner: str, name: str, version: str, path: str, out: Path,
             observer: ProgressObserver | None = None) -> list[Path]:
    """Fetch a file (written as ``out`` or into directory ``out``) or a directory (extracted under ``out``)."""
    return save_download(client.download(owner, name, version, path), path, str(out),
                         observer or ProgressObserver())


def save_download(resp: requests.Response, path: str, out: str, observer: ProgressObserver) -> list[Path]:
    """THE way a download lands (dataset files, job outputs, code snapshots): a tar of a directory
    extracted under ``out``, or one file written into directory ``out`` (or as ``out``) through a
    ``.part`` file, with the modification time its upload recorded."""
    observer.stage("download", int(resp.headers.get("Content-Length") or 0), "bytes")
    raw = _CountingReader(resp.raw, observer)
    target_dir = Path(out)
    if resp.headers.get("Content-Type", "").startswith("application/x-tar"):
        return extract_tar(raw, target_dir)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    target = target_dir / name if target_dir.is_dir() or out.endswith(("/", "\\")) else target_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    with open(tmp, "wb") as fh:
        while block := raw.read(CHUNK):
            fh.write(block)
    os.replace(tmp, target)
    keep_mtime(target, resp.headers.get(MTIME_HEADER))
    return [target]


def extract_tar(raw: _Readable, out: Path) -> list[Path]:
    """Extract a tar stream under ``out``, refusing links and paths that leave it."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(fileobj=cast(IO[bytes], raw), mode="r|") as tar:
        for member in tar:
            try:
                tar.extract(member, out, filter="data")
            except tarfile.FilterError as exc:
                raise FloydClientError(f"Refused to write {member.name!r}: {exc}") from None
            written.append(out / member.name)
    return written


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _CountingReader:
    def __init__(self, raw: _Readable, observer: ProgressObserver) -> None:
        self.raw = raw
        self.observer = observer

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.observer.advance("download", len(data))
        return data
