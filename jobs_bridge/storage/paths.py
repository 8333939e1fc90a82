"""The layout of FLOYD_ROOT and the one containment check every outside path goes through."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from pathlib import Path

from jobs_bridge.errors import BadRequest
from jobs_bridge.names import check_name, check_owner

MAX_PATH_BYTES = 1024
MAX_COMPONENT_BYTES = 255
_CONTROL = re.compile("[\\x00-\\x1f\\x7f]")  # NUL, newline and the other control characters


def clean_relpath(value: object, what: str = "path") -> str:
    """Return a normalized relative POSIX path, refusing anything that could leave a tree.

    Refused: non-strings, empty, absolute paths, ``..`` or ``.`` components, backslashes,
    NUL and other control characters, components over 255 bytes, paths over 1024 bytes.
    Every manifest entry comes through here (100,000 for a large upload), so each check is one
    C-level call: a character-by-character test cost 5 µs a path.
    """
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid {what}: expected a non-empty relative path.")
    ascii_only = value.isascii()
    size = len(value) if ascii_only else len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        raise BadRequest(f"Invalid {what}: longer than {MAX_PATH_BYTES} bytes.")
    if _CONTROL.search(value):
        raise BadRequest(f"Invalid {what} {value!r}: control characters (NUL, newline…) are not allowed.")
    if "\\" in value:
        raise BadRequest(f"Invalid {what} {value!r}: use '/' as the separator, not '\\'.")
    if value.startswith("/"):
        raise BadRequest(f"Invalid {what} {value!r}: absolute paths are not allowed; give it relative to the root.")
    parts = value.split("/")
    if value.endswith("/"):
        parts.pop()
    if "" in parts or "." in parts or ".." in parts:
        raise BadRequest(f"Invalid {what} {value!r}: empty, '.' and '..' components are not allowed.")
    if size > MAX_COMPONENT_BYTES and any(
        (len(part) if ascii_only else len(part.encode("utf-8", "surrogatepass"))) > MAX_COMPONENT_BYTES for part in parts
    ):
        raise BadRequest(f"Invalid {what}: a component is longer than {MAX_COMPONENT_BYTES} bytes.")
    return value[:-1] if value.endswith("/") else value


def contained(root: Path, relpath: str) -> Path:
    """Join ``relpath`` (already cleaned) under ``root`` and make sure the result stays inside.

    Symlinks are resolved, so a link inside the tree that points outside is refused too.
    """
    root_real = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root_real / relpath))
    if target != root_real and root_real not in target.parents:
        raise BadRequest(f"Path {relpath!r} leaves its directory.")
    return target


class StorageLayout:
    """Where everything lives under FLOYD_ROOT (see docs/architecture.md, "Storage").

    The one owner of storage paths: no other module joins path segments under the root.
    Owner and dataset/project/endpoint names are checked on the way in, so a path built
    here never leaves its tree.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    @property
    def instance_id(self) -> str:
        """A short id of this platform (of its root): two platforms on one Docker engine (a test
        run beside `make up`) tell their containers apart by it, in names and labels."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:8]

    # -- top-level trees ------------------------------------------------------------------
    @property
    def blobs(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def uploads(self) -> Path:
        return self.root / "tmp" / "uploads"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def projects(self) -> Path:
        return self.root / "projects"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints"

    @property
    def swarm_probe(self) -> Path:
        """The token file every swarm node's probe task must read to prove it sees this root."""
        return self.root / "swarm-probe"

    def ensure(self) -> None:
        for path in (self.blobs, self.tmp, self.uploads, self.datasets, self.projects, self.snapshots, self.jobs,
                     self.models):
            path.mkdir(parents=True, exist_ok=True)

    # -- secrets and tokens kept in the root ----------------------------------------------
    def secret_file(self, name: str) -> Path:
        """A secret the platform keeps at the top of the root (bridge_cookie_secret, spawner-token, …)."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"Invalid secret file name {name!r}.")
        return self.root / name

    # -- datasets, snapshots, projects, uploads -------------------------------------------
    def dataset_dir(self, owner: str, name: str, kind: str = "data") -> Path:
        """Versions of a dataset live under datasets/, a project's code snapshots under snapshots/,
        a model's versions under models/ (a model and a dataset may share a name)."""
        base = {"code": self.snapshots, "model": self.models}.get(kind, self.datasets)
        return base / check_owner(owner) / check_name(name, "dataset name")

    def version_dir(self, owner: str, name: str, number: int, kind: str = "data") -> Path:
        return self.dataset_dir(owner, name, kind) / str(int(number))

    def project_dir(self, owner: str, name: str) -> Path:
        return self.projects / check_owner(owner) / check_name(name, "project name")

    def upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise BadRequest("Invalid upload id.")
        return self.uploads / upload_id

    # -- jobs -----------------------------------------------------------------------------
    def project_jobs_dir(self, owner: str, project: str) -> Path:
        """All jobs of one project (mounted read-only at /floyd/jobs in its workspaces)."""
        return self.jobs / check_owner(owner) / check_name(project, "project name")

    def job_dir(self, owner: str, project: str, number: int) -> Path:
        return self.project_jobs_dir(owner, project) / str(int(number))

    def job_code(self, owner: str, project: str, number: int) -> Path:
        return self.job_dir(owner, project, number) / "code"

    def job_output(self, owner: str, project: str, number: int) -> Path:
        return self.job_dir(owner, project, number) / "output"

    def job_log(self, owner: str, project: str, number: int) -> Path:
        return self.job_dir(owner, project, number) / "logs" / "output.log"

    # -- endpoints ------------------------------------------------------------------------
    def endpoint_dir(self, owner: str, name: str) -> Path:
        return self.endpoints / check_owner(owner) / check_name(name, "endpoint name")

    def endpoint_version_dir(self, owner: str, name: str, number: int) -> Path:
        return self.endpoint_dir(owner, name) / f"v{int(number)}"

    def endpoint_log(self, owner: str, name: str, number: int) -> Path:
        return self.endpoint_version_dir(owner, name, number) / "logs" / "output.log"

    def replica_dir(self, owner: str, name: str, number: int, index: int) -> Path:
        return self.endpoint_version_dir(owner, name, number) / f"r{int(index)}"

    def replica_scratch(self, owner: str, name: str, number: int, index: int) -> Path:
        """A replica's /floyd/output: scratch space, not kept as anybody's output."""
        return self.replica_dir(owner, name, number, index) / "output"

    # -- what runtimes keep ---------------------------------------------------------------
    def pip_cache(self, owner: str, image_id: str) -> Path:
        """Per user and image id: one user's cached packages never reach another user's container,
        and packages built for one image never meet another's Python."""
        return self.root / "cache" / "pip" / check_owner(owner) / hashlib.sha256(image_id.encode()).hexdigest()[:16]

    @property
    def code_dirs(self) -> Path:
        """Per code snapshot (same path below as below snapshots/), its directories alone, the
        container user's: the layer that makes a job's overlaid code writable (jobs/code.py)."""
        return self.root / "cache" / "code-dirs"

    def workspace_links(self, user: str, server_name: str) -> Path:
        """A local workspace's /floyd, as a directory of links (no container to mount into)."""
        return self.tmp / "workspaces" / check_owner(user) / (server_name or "default")

    def tensorboard_dir(self, owner: str, tb_id: str) -> Path:
        """A TensorBoard's directory (its handle, a scratch home, a local process's links and log)."""
        if not tb_id.isalnum():
            raise ValueError(f"not a TensorBoard id: {tb_id!r}")
        return self.tmp / "tensorboards" / check_owner(owner) / tb_id

    @property
    def tensorboards(self) -> Path:
        return self.tmp / "tensorboards"

    def home(self, user: str) -> Path:
        """HOME of a local workspace process (containers keep theirs in the image)."""
        return self.root / "home" / check_owner(user)


def join_posix(*parts: str) -> str:
    return posixpath.join(*[p for p in parts if p])
