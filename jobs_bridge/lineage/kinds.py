"""One small set of functions per kind of lineage node (see nodes.Kind), and the registry.

The links each function follows are what the records already hold: a job's code snapshot,
inputs and parent; a dataset version's source job (``source_job_id``, set when it was made from
a job's output); a model version's job (the registry's ``ModelVersion.job_id``); an endpoint
version's snapshot, inputs and mounted model version (``model_version_pk``). Children are the same links looked
up the other way round, in the indexes of ``world.World``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from jobs_bridge.lineage.nodes import Context, Kind, Node
from jobs_bridge.lineage.refs import Ref
from jobs_bridge.lineage.world import Linked


def input_refs(inputs: Iterable[tuple[str, str]]) -> Iterator[Ref]:
    """The refs of recorded inputs: ("job", "o/p/12/output"), ("dataset", "o/name:3")."""
    for kind, source in inputs:
        if kind == "job":
            owner, project, number = source.removesuffix("/output").split("/")
            yield Ref("job", owner, project, number)
        elif kind == "dataset":
            base, _, number = source.rpartition(":")
            owner, _, name = base.partition("/")
            yield Ref("dataset", owner, name, number)


def linked_ref(item: Linked) -> Ref:
    return Ref(item.kind, item.owner, item.name, str(item.number))


# -- jobs ---------------------------------------------------------------------------------------
def job_node(ctx: Context, ref: Ref) -> Node | None:
    job = ctx.world.job(ref.owner, ref.name, int(ref.item))
    if job is None or not ctx.may_see(job.owner):
        return None
    label = f"{job.owner}/{job.name}/{job.number}" + (f" (sweep {job.group_id})" if job.group_id else "")
    return Node("job", str(ref), label, job.state, f"{ctx.prefix}jobs/{job.owner}/{job.name}/{job.number}")


def job_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
    job = ctx.world.job(ref.owner, ref.name, int(ref.item))
    if job is None:
        return
    yield Ref("snapshot", job.owner, job.project, job.snapshot)
    yield from input_refs(job.inputs)
    parent = ctx.world.job_with_id(job.parent_id, job.owner) if job.parent_id is not None else None
    if parent is not None:
        yield linked_ref(parent)


def job_children(ctx: Context, ref: Ref) -> Iterator[Ref]:
    job = ctx.world.job(ref.owner, ref.name, int(ref.item))
    if job is None:
        return
    for child in ctx.world.restarts.get(job.id, []):
        yield linked_ref(child)
    for version in ctx.world.made_from.get(job.id, []):
        yield Ref("model" if version.kind == "model" else "dataset", version.owner, version.name, str(version.number))
    for reader in ctx.world.readers.get(f"{job.owner}/{job.name}/{job.number}/output", []):
        yield linked_ref(reader)


# -- dataset versions -----------------------------------------------------------------------------
def dataset_node(ctx: Context, ref: Ref) -> Node | None:
    v = ctx.world.version(ref.owner, ref.name, int(ref.item))
    if v is None or not ctx.may_see(v.owner, v.public):
        return None
    return Node("dataset", str(ref), f"{ref.owner}/{ref.name}:{ref.item}", "committed",
                f"{ctx.prefix}datasets/{ref.owner}/{ref.name}?version={ref.item}")


def dataset_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
    v = ctx.world.version(ref.owner, ref.name, int(ref.item))
    job = ctx.world.job_with_id(v.source_job_id, v.owner) if v and v.source_job_id is not None else None
    if job is not None:
        yield linked_ref(job)


def dataset_children(ctx: Context, ref: Ref) -> Iterator[Ref]:
    for reader in ctx.world.readers.get(f"{ref.owner}/{ref.name}:{ref.item}", []):
        yield linked_ref(reader)


# -- model versions (DatasetVersions of a kind 'model' Dataset, never shown as datasets) ------------
def model_node(ctx: Context, ref: Ref) -> Node | None:
    number = model_number(ctx, ref)
    v = ctx.world.model(ref.owner, ref.name, number) if number is not None else None
    if v is None or not ctx.may_see(v.owner, v.public):
        return None
    return Node("model", str(Ref("model", v.owner, v.name, str(v.number))), f"{v.owner}/{v.name}:{v.number}",
                "registered", f"{ctx.prefix}models/{v.owner}/{v.name}")


def model_number(ctx: Context, ref: Ref) -> int | None:
    """A model ref's version: its number, the one an alias names (``@production``), or the latest."""
    if ref.item.startswith("@"):
        return ctx.world.model_alias(ref.owner, ref.name, ref.item[1:])
    return int(ref.item) if ref.item else ctx.world.latest_model(ref.owner, ref.name)


def model_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
    v = ctx.world.model(ref.owner, ref.name, int(ref.item))
    job = ctx.world.job_with_id(v.source_job_id, v.owner) if v and v.source_job_id is not None else None
    if job is not None:
        yield linked_ref(job)


def model_children(ctx: Context, ref: Ref) -> Iterator[Ref]:
    v = ctx.world.model(ref.owner, ref.name, int(ref.item))
    for endpoint in ctx.world.mounted_by.get(v.pk, []) if v else []:
        yield linked_ref(endpoint)


# -- code snapshots -------------------------------------------------------------------------------
def snapshot_node(ctx: Context, ref: Ref) -> Node | None:
    ctx.world.load(ref.owner)
    if not ctx.may_see(ref.owner) or (ref.owner, ref.name, ref.item) not in ctx.world.code:
        return None
    return Node("snapshot", str(ref), f"{ref.name} code {ref.item.removeprefix('sha256:')[:12]}")


def snapshot_children(ctx: Context, ref: Ref) -> Iterator[Ref]:
    ctx.world.load(ref.owner)
    for run in ctx.world.runs_of.get((ref.owner, ref.name, ref.item), []):
        yield linked_ref(run)


def no_links(ctx: Context, ref: Ref) -> Iterator[Ref]:
    return iter(())


# -- endpoint versions ----------------------------------------------------------------------------
def endpoint_node(ctx: Context, ref: Ref) -> Node | None:
    v = ctx.world.endpoint(ref.owner, ref.name, int(ref.item) if ref.item else None)
    if v is None or not ctx.may_see(v.owner):
        return None
    return Node("endpoint", str(linked_ref(v)), f"{v.owner}/{v.name} v{v.number}", v.state,
                f"{ctx.prefix}serving/{v.owner}/{v.name}")


def endpoint_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
    v = ctx.world.endpoint(ref.owner, ref.name, int(ref.item) if ref.item else None)
    if v is None:
        return
    yield Ref("snapshot", v.owner, v.project, v.snapshot)
    yield from input_refs(v.inputs)
    model = ctx.world.model_with_pk(v.model_pk) if v.model_pk is not None else None
    if model is not None:
        yield Ref("model", model.owner, model.name, str(model.number))


KINDS: dict[str, Kind] = {
    "job": Kind(job_node, job_parents, job_children),
    "dataset": Kind(dataset_node, dataset_parents, dataset_children),
    "model": Kind(model_node, model_parents, model_children),
    "snapshot": Kind(snapshot_node, no_links, snapshot_children),
    "endpoint": Kind(endpoint_node, endpoint_parents, no_links),
}
