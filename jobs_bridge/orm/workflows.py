"""Tables of what is built on jobs and datasets: model versions and aliases, pipeline runs and
their steps, schedules and their runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jobs_bridge.orm.base import Base, utcnow


class ModelVersion(Base):
    """What a model version (a DatasetVersion of a kind 'model' Dataset) was made from: its job."""

    __tablename__ = "model_versions"

    version_pk: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True, index=True)
    source_job: Mapped[str] = mapped_column(String(255))  # owner/project/number, kept if the job is deleted
    output_path: Mapped[str] = mapped_column(Text, default="")  # under the job's output; "" for all of it
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON object, the job's
    metrics: Mapped[str] = mapped_column(Text, default="{}")  # JSON: each metric's last value
    image_id: Mapped[str] = mapped_column(String(128), default="")
    snapshot: Mapped[str] = mapped_column(String(71), default="")
    tags: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings


class ModelAlias(Base):
    """A movable name (production, staging…) for one version of a model."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    moved_by: Mapped[str] = mapped_column(String(128))
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelAliasEvent(Base):
    """The history of an alias: who moved it, when, from which version to which (None: unset)."""

    __tablename__ = "model_alias_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    moved_by: Mapped[str] = mapped_column(String(128))
    moved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PipelineRun(Base):
    """One run of a floyd.yml pipeline: its steps are jobs (or reused earlier jobs) of one project."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (UniqueConstraint("owner", "project", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    project: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    snapshot: Mapped[str] = mapped_column(String(71))
    no_reuse: Mapped[bool] = mapped_column(Boolean, default=False)
    spec: Mapped[str] = mapped_column(Text)  # JSON: {"steps": {...}, "save_outputs": {...}}
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    steps: Mapped[list[PipelineStep]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                     order_by="PipelineStep.position")


class PipelineStep(Base):
    """A step of a run: waiting for its inputs, then a job of its own or an earlier job reused."""

    __tablename__ = "pipeline_steps"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)  # in topological order
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    needs: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of step names
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    reused: Mapped[bool] = mapped_column(Boolean, default=False)
    cache_key: Mapped[str] = mapped_column(String(71), default="", index=True)
    saved_as: Mapped[str] = mapped_column(String(255), default="")  # the dataset version its output became
    model_saved_as: Mapped[str] = mapped_column(String(255), default="", server_default="")  # its model version
    run: Mapped[PipelineRun] = relationship(back_populates="steps")


class Schedule(Base):
    """A cron schedule that submits a stored request (kind 'job': a job request, as POST /jobs takes)."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(64))
    cron: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    kind: Mapped[str] = mapped_column(String(16), default="job")  # what ``target`` is: 'job' (later 'pipeline')
    target: Mapped[str] = mapped_column(Text)  # JSON: the stored request
    allow_overlap: Mapped[bool] = mapped_column(Boolean, default=False)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    last_jobs: Mapped[str] = mapped_column(Text, default="[]")  # JSON: ids of the jobs of the newest run
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScheduleRun(Base):
    """One time a schedule came due: what it started, or why it started nothing."""

    __tablename__ = "schedule_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    missed: Mapped[int] = mapped_column(Integer, default=0)  # earlier due times this run stands for
    outcome: Mapped[str] = mapped_column(String(16))  # started | skipped | failed
    reason: Mapped[str] = mapped_column(Text, default="")
    jobs: Mapped[str] = mapped_column(Text, default="[]")  # JSON: names of the jobs started
