"""One small set of functions per kind of lineage node (see nodes.Kind), and the registry.

The links each function follows are what the records already hold: a job's code snapshot,
inputs and parent; a dataset version's source job (``source_job_id``, set when it was made from
a job's output); an endpoint version's snapshot and inputs. Children are found by searching for
those same links the other way round, only among objects the caller may see."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import or_, select

from jobs_bridge.lineage.nodes import Context, Kind, Node
from jobs_bridge.lineage.refs import Ref
from jobs_bridge.orm import Dataset, DatasetVersion, Endpoint, EndpointVersion, Job

JOB_COLUMNS = (Job.id, Job.owner, Job.project, Job.number, Job.state, Job.parent_id, Job.inputs, Job.snapshot,
               Job.group_id)


def input_refs(inputs_json: str) -> Iterator[Ref]:
    """The refs of a job's or endpoint version's recorded inputs (``[{source, kind, …}]``)."""
    for item in json.loads(inputs_json or "[]"):
        source = item.get("source", "")
        if item.get("kind") == "job":
            owner, project, number = source.removesuffix("/output").split("/")
            yield Ref("job", owner, project, number)
        elif item.get("kind") == "dataset":
            base, _, number = source.rpartition(":")
            owner, _, name = base.partition("/")
            yield Ref("dataset", owner, name, number)


def _quoted(source: str) -> str:
    return json.dumps(source)  # how the source appears inside a stored inputs list


# -- jobs ---------------------------------------------------------------------------------------
def _job_row(ctx: Context, ref: Ref) -> Any:
    key = ("job", ref.owner, ref.name, ref.item)
    if key not in ctx.cache:
        ctx.cache[key] = ctx.s.execute(select(*JOB_COLUMNS).where(
            Job.owner == ref.owner, Job.project == ref.name, Job.number == int(ref.item))).first()
    return ctx.cache[key]


def _job_ref(ctx: Context, job_id: int) -> Ref | None:
    row = ctx.s.execute(select(Job.owner, Job.project, Job.number).where(Job.id == job_id)).first()
    return Ref("job", row.owner, row.project, str(row.number)) if row else None


def job_node(ctx: Context, ref: Ref) -> Node | None:
    row = _job_row(ctx, ref)
    if row is None or not ctx.may_see(row.owner):
        return None
    label = f"{row.owner}/{row.project}/{row.number}" + (f" (sweep {row.group_id})" if row.group_id else "")
    return Node("job", str(ref), label, row.state, f"{ctx.prefix}jobs/{row.owner}/{row.project}/{row.number}")


def job_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
    row = _job_row(ctx, ref)
    yield Ref("snapshot", row.owner, row.project, row.snapshot)
    yield from input_refs(row.inputs)
    if row.parent_id is not None:
        parent = _job_ref(ctx, row.parent_id)
        if parent is not None:
            yield parent


def job_children(ctx: Context, ref: Ref) -> Iterator[Ref]:
    row = _job_row(ctx, ref)
    output = _quoted(f"{row.owner}/{row.project}/{row.number}/output")
    yield from _jobs_where(ctx, or_(Job.parent_id == row.id, Job.inputs.contains(output)))
    for owner, name, number in ctx.s.execute(
            select(Dataset.owner, Dataset.name, DatasetVersion.number).join(Dataset)
            .where(DatasetVersion.source_job_id == row.id).order_by(DatasetVersion.id)):
        yield Ref("dataset", owner, name, str(number))
    yield from _endpoint_versions_where(ctx, EndpointVersion.inputs.contains(output))


def _jobs_where(ctx: Context, condition: Any) -> Iterator[Ref]:
    q = select(Job.owner, Job.project, Job.number).where(condition).order_by(Job.id)
    if (owners := ctx.owners()) is not None:
        q = q.where(Job.owner.in_(owners))
    for owner, project, number in ctx.s.execute(q):
        yield Ref("job", owner, project, str(number))


def _endpoint_versions_where(ctx: Context, condition: Any) -> Iterator[Ref]:
    q = (select(Endpoint.owner, Endpoint.name, EndpointVersion.number).join(Endpoint)
         .where(condition).order_by(EndpointVersion.id))
    if (owners := ctx.owners()) is not None:
        q = q.where(Endpoint.owner.in_(owners))
    for owner, name, number in ctx.s.execute(q):
        yield Ref("endpoint", owner, name, str(number))


# -- dataset versions -----------------------------------------------------------------------------
def _version_row(ctx: Context, ref: Ref) -> Any:
    key = ("dataset", ref.owner, ref.name, ref.item)
    if key not in ctx.cache:
        ctx.cache[key] = ctx.s.execute(
            select(Dataset.owner, Dataset.public, DatasetVersion.number, DatasetVersion.source_job_id,
                   DatasetVersion.message).join(Dataset)
            .where(Dataset.owner == ref.owner, Dataset.name == ref.name, Dataset.kind == "data",
                   DatasetVersion.number == int(ref.item))).first()
    return ctx.cache[key]


def dataset_node(ctx: Context, ref: Ref) -> Node | None:
    row = _version_row(ctx, ref)
    if row is None or not ctx.may_see(row.owner, row.public):
        return None
    return Node("dataset", str(ref), f"{ref.owner}/{ref.name}:{ref.item}", "committed",
                f"{ctx.prefix}datasets/{ref.owner}/{ref.name}?version={ref.item}")


def dataset_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
    row = _version_row(ctx, ref)
    if row.source_job_id is not None:
        job = _job_ref(ctx, row.source_job_id)
        if job is not None:
            yield job


def dataset_children(ctx: Context, ref: Ref) -> Iterator[Ref]:
    source = _quoted(f"{ref.owner}/{ref.name}:{ref.item}")
    yield from _jobs_where(ctx, Job.inputs.contains(source))
    yield from _endpoint_versions_where(ctx, EndpointVersion.inputs.contains(source))


# -- code snapshots -------------------------------------------------------------------------------
def snapshot_node(ctx: Context, ref: Ref) -> Node | None:
    if not ctx.may_see(ref.owner) or ctx.s.execute(
            select(DatasetVersion.id).join(Dataset).where(
                Dataset.owner == ref.owner, Dataset.name == ref.name, Dataset.kind == "code",
                DatasetVersion.version_id == ref.item).limit(1)).first() is None:
        return None
    return Node("snapshot", str(ref), f"{ref.name} code {ref.item.removeprefix('sha256:')[:12]}")


def snapshot_children(ctx: Context, ref: Ref) -> Iterator[Ref]:
    yield from _jobs_where(ctx, (Job.owner == ref.owner) & (Job.project == ref.name) & (Job.snapshot == ref.item))
    yield from _endpoint_versions_where(ctx, (Endpoint.owner == ref.owner) & (EndpointVersion.project == ref.name)
                                        & (EndpointVersion.snapshot == ref.item))


def no_links(ctx: Context, ref: Ref) -> Iterator[Ref]:
    return iter(())


# -- endpoint versions ----------------------------------------------------------------------------
def _endpoint_row(ctx: Context, ref: Ref) -> Any:
    key = ("endpoint", ref.owner, ref.name, ref.item)
    if key not in ctx.cache:
        q = (select(Endpoint.owner, Endpoint.name, EndpointVersion.number, EndpointVersion.state,
                    EndpointVersion.project, EndpointVersion.snapshot, EndpointVersion.inputs).join(Endpoint)
             .where(Endpoint.owner == ref.owner, Endpoint.name == ref.name))
        if ref.item:
            q = q.where(EndpointVersion.number == int(ref.item))
        else:  # the endpoint itself: its newest ready version, else its newest
            q = q.order_by((EndpointVersion.state == "ready").desc(), EndpointVersion.number.desc()).limit(1)
        ctx.cache[key] = ctx.s.execute(q).first()
    return ctx.cache[key]


def endpoint_node(ctx: Context, ref: Ref) -> Node | None:
    row = _endpoint_row(ctx, ref)
    if row is None or not ctx.may_see(row.owner):
        return None
    versioned = Ref("endpoint", row.owner, row.name, str(row.number))
    ctx.cache[("endpoint", row.owner, row.name, versioned.item)] = row
    return Node("endpoint", str(versioned), f"{row.owner}/{row.name} v{row.number}", row.state,
                f"{ctx.prefix}serving/{row.owner}/{row.name}")


def endpoint_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
    row = _endpoint_row(ctx, ref)
    yield Ref("snapshot", row.owner, row.project, row.snapshot)
    yield from input_refs(row.inputs)


KINDS: dict[str, Kind] = {
    "job": Kind(job_node, job_parents, job_children),
    "dataset": Kind(dataset_node, dataset_parents, dataset_children),
    "snapshot": Kind(snapshot_node, no_links, snapshot_children),
    "endpoint": Kind(endpoint_node, endpoint_parents, no_links),
}
