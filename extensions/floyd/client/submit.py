"""Upload the code, then submit the job: what every front end does once it has a request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from floyd.client.http import FloydClient
from floyd.client.progress import ProgressObserver
from floyd.client.request import JobRequest
from floyd.client.transfer import UploadResult, upload_code


@dataclass
class Submitted:
    """The bridge's answer (``{"job": …}`` or, for a sweep, ``{"group": …, "jobs": […]}``) and the upload."""

    result: dict
    upload: UploadResult

    @property
    def snapshot(self) -> str:
        return str(self.upload.version["id"])

    def facts(self) -> dict:
        """The answer with what was uploaded: ``snapshot``, ``duplicate``, ``files``, ``sent_*``."""
        return {**self.result, "snapshot": self.snapshot, **self.upload.facts()}


def snapshot_request(client: FloydClient, request: JobRequest, root: Path, extra: Mapping[str, bytes] | None = None,
                     observer: ProgressObserver | None = None) -> tuple[JobRequest, UploadResult]:
    """Snapshot ``root`` (plus ``extra`` files) for ``request.project``: the request on that snapshot,
    ready to submit now or to store in a schedule."""
    owner, name = request.project.split("/", 1)
    up = upload_code(client, owner, name, root, observer=observer, extra=extra)
    return replace(request, snapshot=up.version["id"]), up


def submit_job(client: FloydClient, request: JobRequest, root: Path, extra: Mapping[str, bytes] | None = None,
               observer: ProgressObserver | None = None) -> Submitted:
    """Snapshot ``root`` (plus ``extra`` files) for ``request.project`` and submit ``request`` on it."""
    ready, up = snapshot_request(client, request, root, extra, observer)
    return Submitted(client.submit_job(ready.to_body()), up)
