"""``/api/v1/jobs``: submit, list, show, stop, restart, logs (live), metrics, outputs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from jobs_bridge.errors import BadRequest, FloydError, NotFound
from jobs_bridge.handlers.base import BaseHandler, to_http
from jobs_bridge.handlers.logstream import LogStreamMixin
from jobs_bridge.jobs import states
from jobs_bridge.jobs.logs import LogStore
from jobs_bridge.storage.paths import clean_relpath, contained
from jobs_bridge.storage.tarstream import END_OF_ARCHIVE, MTIME_HEADER, member_header, padding
from jobs_bridge.validate import INT_MAX

WAIT_LIVE_RECHECK = 5.0  # seconds; a queued job's follower is woken by its launch, this is a safety net


class JobListHandler(BaseHandler):
    async def get(self) -> None:
        limit = self.int_argument("limit", 200, 1, 1000)
        group_id = self.int_argument("group", None, 0, INT_MAX)
        items = await self.call(self.bridge.job_manager.list, self.caller, self.raw_argument("project") or None,
                                group_id, self.raw_argument("state") or None, limit)
        self.write_json({"items": items})

    async def post(self) -> None:
        result = await self.call(self.bridge.job_manager.submit, self.caller, self.json_body())
        self.write_json(result, 201)


class JobHandler(BaseHandler):
    async def get(self, owner: str, project: str, number: str) -> None:
        self.write_json(await self.call(self.bridge.job_manager.get, self.caller, owner, project, number))


class JobStopHandler(BaseHandler):
    async def post(self, owner: str, project: str, number: str) -> None:
        try:
            result = await self.bridge.job_manager.stop(self.caller, owner, project, number)
        except FloydError as exc:
            raise to_http(exc) from None
        self.write_json(result)


class JobRestartHandler(BaseHandler):
    async def post(self, owner: str, project: str, number: str) -> None:
        overrides = self.json_body()
        record = await self.call(self.bridge.job_manager.get, self.caller, owner, project, number)
        body = {
            "project": record["project"], "snapshot": record["snapshot"], "environment": record["environment"],
            "gpus": record["resources"]["gpus"], "cpus": record["resources"]["cpus"],
            "memory": record["resources"]["memory"], "params": record["params"],
            "inputs": [{"source": i["source"], "mount": i["mount"]} for i in record["inputs"]],
            "max_runtime": record["max_runtime"], "message": record["message"], "task": record["task"],
            **({"notebook": record["notebook"]} if record["notebook"] else {"command": record["command"]}),
        }
        if "command" in overrides or "notebook" in overrides:
            body.pop("command", None)
            body.pop("notebook", None)
        if "params" in overrides and isinstance(overrides["params"], dict):
            overrides = {**overrides, "params": {**record["params"], **overrides["params"]}}
        body.update(overrides)
        body["parent"] = record["id"]
        self.write_json(await self.call(self.bridge.job_manager.submit, self.caller, body), 201)


class JobLogsHandler(LogStreamMixin, BaseHandler):
    """Plain text of the log so far, or (``?follow=1``) server-sent events: every line from the
    start, then the live tail, then ``event: end``."""

    async def get(self, owner: str, project: str, number: str) -> None:
        manager = self.bridge.job_manager
        await self.call(manager.get, self.caller, owner, project, number)
        path = self.bridge.layout.job_log(owner, project, int(number))
        job_id = await self.call(manager.job_id, self.caller, owner, project, number)

        def live() -> LogStore | None:
            rj = manager.running.get(job_id)
            return rj.logs if rj is not None else None

        async def wait_live() -> LogStore | None:
            while True:  # queued: wait until the scheduler picks it (or it ends without running)
                change = manager.change  # taken first: a launch from here on sets it
                rj = manager.running.get(job_id)
                if rj is not None:
                    return rj.logs
                if await self.call(manager.state_of, job_id) in states.FINISHED:
                    return None
                try:  # woken by the launch; the timeout only re-reads the state (a missed end)
                    await asyncio.wait_for(change.wait(), WAIT_LIVE_RECHECK)
                except asyncio.TimeoutError:
                    pass

        await self.stream_log(path, live, lambda: self.call(manager.state_of, job_id), wait_live)


class JobMetricsHandler(BaseHandler):
    allow_job_token = True

    async def get(self, owner: str, project: str, number: str) -> None:
        self._own_job_only(owner, project, number)
        self.write_json(await self.call(self.bridge.job_manager.metrics_of, self.caller, owner, project, number))

    def _own_job_only(self, owner: str, project: str, number: str) -> None:
        job = self.job_caller
        if job is not None and (job.owner, job.project, str(job.number)) != (owner, project, number.lstrip("0") or "0"):
            raise to_http(NotFound("A job's token only reaches its own job."))

    async def post(self, owner: str, project: str, number: str) -> None:
        body = self.json_body()
        manager = self.bridge.job_manager
        job = self.job_caller
        self._own_job_only(owner, project, number)
        if job is not None:
            job_id = job.id
        else:
            job_id = await self.call(self.bridge.job_manager.job_id, self.caller, owner, project, number)
        count = await self.call(manager.report_metrics, job_id, body.get("metrics"))
        self.write_json({"accepted": count})


class JobPackagesHandler(BaseHandler):
    async def get(self, owner: str, project: str, number: str) -> None:
        items = await self.call(self.bridge.job_manager.packages, self.caller, owner, project, number)
        self.write_json({"items": items})


class JobOutputBase(BaseHandler):
    async def output_dir(self, owner: str, project: str, number: str) -> Path:
        await self.call(self.bridge.job_manager.get, self.caller, owner, project, number)
        return self.bridge.layout.job_output(owner, project, int(number))

    def resolve(self, base: Path, path: str) -> Path:
        if not path:
            return base
        try:
            target = contained(base, clean_relpath(path))
        except FloydError as exc:
            raise to_http(exc) from None
        if not target.exists():
            raise to_http(NotFound(f"The job's output has no {path!r}."))
        return target


class JobOutputFilesHandler(JobOutputBase):
    async def get(self, owner: str, project: str, number: str) -> None:
        base = await self.output_dir(owner, project, number)
        target = self.resolve(base, self.raw_argument("path"))
        recursive = self.flag_argument("recursive")

        def listing() -> list[dict[str, object]]:
            if not base.exists():
                return []
            if target.is_file():
                return [{"path": str(target.relative_to(base)), "type": "file", "size": target.stat().st_size}]
            out: list[dict[str, object]] = []
            walker = target.rglob("*") if recursive else target.iterdir()
            for p in sorted(walker):
                rel = str(p.relative_to(base))
                if p.is_dir():
                    if not recursive:
                        out.append({"path": rel, "type": "directory"})
                else:
                    out.append({"path": rel, "type": "file", "size": p.stat().st_size})
            return out

        self.write_json({"job": f"{owner}/{project}/{number}", "files": await self.call(listing)})


class JobOutputDownloadHandler(JobOutputBase):
    async def get(self, owner: str, project: str, number: str) -> None:
        base = await self.output_dir(owner, project, number)
        path = self.raw_argument("path")
        target = self.resolve(base, path)
        if target.is_file():
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Length", str(target.stat().st_size))
            self.set_header(MTIME_HEADER, repr(target.stat().st_mtime))
            await self.stream_file(target)
            self.finish()
            return
        root = target.name if path else f"{project}-{number}-output"
        self.set_header("Content-Type", "application/x-tar")
        files = await self.call(lambda: sorted(p for p in target.rglob("*") if p.is_file() and not p.is_symlink()))
        for p in files:
            size = p.stat().st_size
            self.write(member_header(f"{root}/{p.relative_to(target)}", size, 0o644, p.stat().st_mtime))
            await self.stream_file(p)
            self.write(padding(size))
        self.write(END_OF_ARCHIVE)
        self.finish()


class SnapshotStartHandler(BaseHandler):
    """A project's code snapshot uses the dataset upload protocol (pack, blobs, commit)."""

    async def post(self, owner: str, name: str) -> None:
        body = self.json_body()
        status, result = await self.call(self.bridge.upload_manager.start, self.caller, owner, name,
                                         body.get("manifest"), body.get("message", ""), False, "code",
                                         self.request.body)
        self.write_json(result, status)


class SnapshotDownloadHandler(BaseHandler):
    async def get(self, owner: str, name: str, snapshot: str) -> None:
        entries = await self.call(self.bridge.dataset_manager.snapshot_entries, self.caller, owner, name, snapshot)
        self.set_header("Content-Type", "application/x-tar")
        await self.call(self.bridge.store.settle)  # a snapshot just uploaded may be in a journal
        for e in entries:
            self.write(member_header(e.path, e.size, 0o644, e.mtime or 0))
            await self.stream_file(self.bridge.store.path(e.hexdigest))
            self.write(padding(e.size))
        self.write(END_OF_ARCHIVE)
        self.finish()


class DatasetFromJobHandler(BaseHandler):
    async def post(self, owner: str, name: str) -> None:
        caller = self.caller
        await self.call(self.bridge.dataset_manager.get, caller, owner, name)  # 404 before judging the body
        body = self.json_body()
        job = body.get("job")
        if not isinstance(job, str):
            raise to_http(BadRequest("'job' must be OWNER/PROJECT/NUMBER of a finished job."))
        result = await self.call(self.bridge.upload_manager.from_job_output, caller, owner, name, job,
                                 body.get("message", ""))
        self.write_json(result, 201)


default_handlers = [
    ("/api/v1/jobs", JobListHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}", JobHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}/stop", JobStopHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}/restart", JobRestartHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}/logs", JobLogsHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}/metrics", JobMetricsHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}/packages", JobPackagesHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}/output/files", JobOutputFilesHandler),
    ("/api/v1/jobs/{owner}/{project}/{number}/output/download", JobOutputDownloadHandler),
    ("/api/v1/projects/{owner}/{name}/snapshots", SnapshotStartHandler),
    ("/api/v1/projects/{owner}/{name}/snapshots/{snapshot}/download", SnapshotDownloadHandler),
    ("/api/v1/datasets/{owner}/{name}/from-job", DatasetFromJobHandler),
]
