"""Database tables (SQLAlchemy 2 typed models). Request/response shapes live in the managers.

One import place for every table (``from jobs_bridge.orm import Job``), and the whole metadata
(Alembic and the schema test read ``Base.metadata``) once this package is imported."""

from jobs_bridge.orm.base import NAMING_CONVENTION, Base, utcnow
from jobs_bridge.orm.core import (
    BlobOwner,
    Dataset,
    DatasetVersion,
    Endpoint,
    EndpointKey,
    EndpointMetric,
    EndpointReplica,
    EndpointVersion,
    GpuLease,
    ImagePackages,
    Job,
    JobGroup,
    JobMetric,
    Project,
    Upload,
    VersionFile,
)
from jobs_bridge.orm.workflows import (
    ModelAlias,
    ModelAliasEvent,
    ModelVersion,
    PipelineRun,
    PipelineStep,
    Schedule,
    ScheduleRun,
)

__all__ = [
    "Base",
    "BlobOwner",
    "Dataset",
    "DatasetVersion",
    "Endpoint",
    "EndpointKey",
    "EndpointMetric",
    "EndpointReplica",
    "EndpointVersion",
    "GpuLease",
    "ImagePackages",
    "Job",
    "JobGroup",
    "JobMetric",
    "ModelAlias",
    "ModelAliasEvent",
    "ModelVersion",
    "NAMING_CONVENTION",
    "PipelineRun",
    "PipelineStep",
    "Project",
    "Schedule",
    "ScheduleRun",
    "Upload",
    "VersionFile",
    "utcnow",
]
