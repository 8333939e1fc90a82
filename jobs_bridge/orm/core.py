"""Tables of the platform's first objects: projects, datasets and their versions, uploads, GPU
leases, jobs and their metrics, endpoints with their versions, replicas, keys and metrics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobs_bridge.orm.base import Base, utcnow


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Dataset(Base):
    """A dataset (kind 'data'), or the code snapshots of a project (kind 'code', named after it)."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("owner", "kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_number: Mapped[int] = mapped_column(Integer, default=0)  # numbers are never reused
    kind: Mapped[str] = mapped_column(String(16), default="data")

    versions: Mapped[list[DatasetVersion]] = relationship(
        back_populates="dataset", order_by="DatasetVersion.number", cascade="all, delete-orphan"
    )


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    version_id: Mapped[str] = mapped_column(String(71), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    # the job whose output became this version (lineage); NULL for uploads
    source_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True,
                                                      index=True)
    # the full version whose files this one's rows amend (migration 0017): NULL = its rows are all
    # its files; otherwise its rows are only the paths added, changed or removed relative to that
    # base (datasets/layers.py reads both). No foreign key: deleting a base first rebases its
    # dependents (datasets/rebase.py), and SQLite would rebuild the table to add one.
    base_pk: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)

    dataset: Mapped[Dataset] = relationship(back_populates="versions")


class VersionFile(Base):
    __tablename__ = "version_files"
    __table_args__ = (Index("ix_version_files_hash", "hash"),)

    version_pk: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    )
    # byte order on every database (migration 0007): the file listing's keyset relies on it
    path: Mapped[str] = mapped_column(String(1024).with_variant(String(1024, collation="C"), "postgresql"),
                                      primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    # the uploader's modification time (seconds); NULL for files uploaded before it was recorded
    mtime: Mapped[float | None] = mapped_column(Float, nullable=True)
    # in a delta version: the path is gone relative to the base (size and hash are the base's)
    removed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class Upload(Base):
    """An open upload session; its manifest is kept on disk beside the partial blobs."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[str] = mapped_column(String(71))
    message: Mapped[str] = mapped_column(Text, default="")
    total_size: Mapped[int] = mapped_column(BigInteger, default=0)
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BlobOwner(Base):
    """Who has proven they hold a blob's bytes.

    Deduplication is per user: a blob another user stored is not "already there" for you,
    so nobody can claim content by naming its hash.
    """

    __tablename__ = "blob_owners"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), primary_key=True)


class GpuLease(Base):
    """A GPU device id held by a workspace, job or endpoint."""

    __tablename__ = "gpu_leases"

    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255), index=True)
    owner: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobGroup(Base):
    """A sweep: jobs made from one spec over a grid or random draw of parameters."""

    __tablename__ = "job_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    project: Mapped[str] = mapped_column(String(64))
    spec: Mapped[str] = mapped_column(Text)  # JSON: the sweep as asked for
    concurrency: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    """A job and the record that reproduces it."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("owner", "project", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    project: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    command: Mapped[str] = mapped_column(Text, default="")
    notebook: Mapped[str] = mapped_column(Text, default="")
    environment: Mapped[str] = mapped_column(String(64))
    image: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(String(128), default="")
    cpus: Mapped[float] = mapped_column(Float)
    memory: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    gpu_devices: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    inputs: Mapped[str] = mapped_column(Text, default="[]")  # JSON: [{source, mount, kind, version_id, path}]
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON object
    tags: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON object (MLflow tags)
    max_runtime: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str] = mapped_column(String(64), default="")
    snapshot: Mapped[str] = mapped_column(String(71))
    requirements_hash: Mapped[str] = mapped_column(String(64), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True,
                                                  index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("job_groups.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    executor: Mapped[str] = mapped_column(String(16), default="")
    handle: Mapped[str] = mapped_column(String(128), default="")  # container id or pid
    code_mount: Mapped[str] = mapped_column(String(16), default="")  # overlay, reflink or copy; "" before prepare
    # runs again after a lost run at most this often; the lost attempts, as JSON [{attempt, reason, …}]
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    token_hash: Mapped[str] = mapped_column(String(64), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # when the queue gave it a slot (state starting): queue wait and start-up are told apart
    picked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobMetric(Base):
    __tablename__ = "job_metrics"
    __table_args__ = (Index("ix_job_metrics_job_name", "job_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    value: Mapped[float] = mapped_column(Float)
    ts: Mapped[float] = mapped_column(Float)


class ImagePackages(Base):
    """Installed packages of an image, captured once per image id."""

    __tablename__ = "image_packages"

    image_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    packages: Mapped[str] = mapped_column(Text)  # JSON list of "name==version"


class Endpoint(Base):
    """A named REST endpoint of a user; each deployment of it is an immutable EndpointVersion."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=False)  # no API key needed
    last_number: Mapped[int] = mapped_column(Integer, default=0)  # version numbers are never reused
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the model alias this endpoint follows: moving the alias rolls out a new version (docs/models.md)
    follow_model_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"),
                                                        nullable=True, index=True)
    follow_alias: Mapped[str] = mapped_column(String(64), default="")
    # Autoscaling (min_replicas None: each version keeps the replicas it was deployed with);
    # a None window or idle time means the Autoscaler's default.
    min_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_in_flight: Mapped[float | None] = mapped_column(Float, nullable=True)
    scale_up_window: Mapped[float | None] = mapped_column(Float, nullable=True)
    scale_down_window: Mapped[float | None] = mapped_column(Float, nullable=True)
    idle_timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Traffic split of unpinned requests, JSON {"<version>": percent}; {} = the newest ready version.
    traffic: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    rollback_error_rate: Mapped[float | None] = mapped_column(Float, nullable=True)  # canary's 5xx share
    # Limits at the edge (None: the platform's own).
    max_body_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    request_timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_limit: Mapped[float | None] = mapped_column(Float, nullable=True)  # requests/s per key


class EndpointVersion(Base):
    """One deployment: what runs (snapshot, entry, image, inputs, resources) never changes."""

    __tablename__ = "endpoint_versions"
    __table_args__ = (UniqueConstraint("endpoint_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)  # deploying ready failed draining stopped
    reason: Mapped[str] = mapped_column(Text, default="")
    project: Mapped[str] = mapped_column(String(64))
    snapshot: Mapped[str] = mapped_column(String(71))
    requirements_hash: Mapped[str] = mapped_column(String(64), default="")
    entry: Mapped[str] = mapped_column(Text)  # app.py, module:attr, or a notebook
    environment: Mapped[str] = mapped_column(String(64))
    image: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(String(128), default="")
    cpus: Mapped[float] = mapped_column(Float)
    memory: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[int] = mapped_column(Integer, default=0)  # per replica
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    inputs: Mapped[str] = mapped_column(Text, default="[]")  # JSON, as for jobs
    health_path: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    stats: Mapped[str] = mapped_column(Text, default="{}")  # JSON: request counters and latency histogram
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the model version mounted at /floyd/model (lineage walks it); its ref stays readable if it is deleted
    model_version_pk: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id", ondelete="SET NULL"),
                                                         nullable=True, index=True)
    model_ref: Mapped[str] = mapped_column(String(255), default="")  # alice/iris:3 (@production when followed)
    model_path: Mapped[str] = mapped_column(Text, default="")  # host path of the materialized version


class EndpointReplica(Base):
    """A running copy of a version: where it listens, so a restarted bridge routes to it again."""

    __tablename__ = "endpoint_replicas"
    __table_args__ = (UniqueConstraint("version_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("endpoint_versions.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    handle: Mapped[str] = mapped_column(String(128), default="")  # container id or pid
    port: Mapped[int] = mapped_column(Integer, default=0)
    gpu_devices: Mapped[str] = mapped_column(Text, default="[]")
    restarts: Mapped[int] = mapped_column(Integer, default=0)


class EndpointKey(Base):
    """An API key of an endpoint, stored as the SHA-256 of the secret (shown once, at creation)."""

    __tablename__ = "endpoint_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell keys apart
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EndpointMetric(Base):
    """Requests of one version in one time bucket (for the endpoint page's chart)."""

    __tablename__ = "endpoint_metrics"
    __table_args__ = (Index("ix_endpoint_metrics_version_ts", "version_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("endpoint_versions.id", ondelete="CASCADE"))
    ts: Mapped[float] = mapped_column(Float)  # bucket start, seconds since the epoch
    requests: Mapped[int] = mapped_column(Integer)
    errors_4xx: Mapped[int] = mapped_column(Integer)
    errors_5xx: Mapped[int] = mapped_column(Integer)
    p50_ms: Mapped[float] = mapped_column(Float)
    p95_ms: Mapped[float] = mapped_column(Float)
    p99_ms: Mapped[float] = mapped_column(Float)
    replicas: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # the most in the bucket
