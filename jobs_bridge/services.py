"""What request handlers may reach: typed references to the managers, not the whole app.

The application builds one :class:`BridgeServices` at start-up and puts it in tornado's
settings; handlers read it as ``self.bridge``. Keeping this narrow means a handler cannot
reach configuration or start-up machinery, and mypy checks every use.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge.admission import WriteGate
from jobs_bridge.datasets.manager import DatasetManager
from jobs_bridge.datasets.uploads import UploadManager
from jobs_bridge.jobs.compare import RunComparison
from jobs_bridge.jobs.manager import JobManager
from jobs_bridge.lineage.graph import LineageBuilder
from jobs_bridge.pipelines.manager import PipelineManager
from jobs_bridge.projects import ProjectManager
from jobs_bridge.registry.manager import ModelManager
from jobs_bridge.request_limits import Followers, RequestLimits
from jobs_bridge.resources.environments import EnvironmentList
from jobs_bridge.resources.gpus import GpuAllocator
from jobs_bridge.schedules.manager import ScheduleManager
from jobs_bridge.serving.deployments import DeploymentManager
from jobs_bridge.storage.blobs import BlobStore
from jobs_bridge.storage.paths import StorageLayout
from jobs_bridge.tensorboards.manager import TensorBoardManager
from jobs_bridge.workspaces import WorkspaceManager


@dataclass(frozen=True)
class BridgeServices:
    sessions: sessionmaker[Session]
    layout: StorageLayout
    store: BlobStore
    executor: ThreadPoolExecutor  # blocking work (database, hashing, copies) runs here, off the loop
    read_executor: ThreadPoolExecutor  # the blocking part of GET/HEAD: reads never queue behind writes
    write_gate: WriteGate  # how many writes run their blocking part at once (the rest queue, none refused)
    dataset_manager: DatasetManager
    upload_manager: UploadManager
    models: ModelManager
    project_manager: ProjectManager
    workspace_manager: WorkspaceManager
    gpu_allocator: GpuAllocator
    environments_list: EnvironmentList
    job_manager: JobManager
    pipelines: PipelineManager
    deployments: DeploymentManager
    schedules: ScheduleManager
    tensorboards: TensorBoardManager
    admin_services: Collection[str]  # hub services that act with admin rights (the spawner)
    service_prefix: str  # e.g. /services/floyd/
    hub_prefix: str  # e.g. /hub/, for links to the hub's pages
    openapi_document: Callable[[], dict[str, Any]]
    request_limits: RequestLimits  # query strings, live log streams
    followers: Followers  # the live log streams open now
    comparison: RunComparison  # runs side by side (floyd compare, the compare page)
    lineage: LineageBuilder  # the graph of what made what (floyd lineage, the lineage page)

    def usage(self, owner: str) -> int:
        """Bytes of dataset storage ``owner`` uses (blocking: call it through the executor)."""
        with self.sessions() as s:
            return self.dataset_manager.usage(s, owner)
