"""The graph builder on a database of its own (no platform): a long chain, what another user
sees, the depth cut, and a kind added as data (as the model registry will add model versions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from jobs_bridge import db
from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import BadRequest, NotFound
from jobs_bridge.lineage.graph import LineageBuilder
from jobs_bridge.lineage.kinds import KINDS
from jobs_bridge.lineage.nodes import Context, Kind, Node
from jobs_bridge.lineage.refs import Ref
from jobs_bridge.orm import Dataset, DatasetVersion, Endpoint, EndpointVersion, Job, ModelAlias, ModelVersion

SNAP = "sha256:" + "a" * 64
CHAIN = 50


def job(number: int, source: str, kind: str = "dataset", owner: str = "u") -> Job:
    return Job(owner=owner, project="p", number=number, state="succeeded", environment="cpu", image="x", cpus=1,
               memory=1, snapshot=SNAP, created_by=owner,
               inputs=json.dumps([{"source": source, "mount": "d", "kind": kind, "version_id": None}]))


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    """u/raw:1 → u/p/1 → u/chain:1 → u/p/2 → … → u/p/50 → endpoint u/ep:1; v/p/1 reads the public
    u/pub:1, made from u/p/1."""
    path = Path(tmp_path_factory.mktemp("lineage-db")) / "db.sqlite"
    engine = db.make_engine(f"sqlite:///{path}")
    db.init_schema(engine, f"sqlite:///{path}")
    sessions = sessionmaker(engine)
    with sessions.begin() as s:
        code = Dataset(owner="u", name="p", kind="code")
        raw, chain, pub = Dataset(owner="u", name="raw"), Dataset(owner="u", name="chain"), \
            Dataset(owner="u", name="pub", public=True)
        s.add_all([code, raw, chain, pub])
        s.flush()
        s.add_all([DatasetVersion(dataset_id=code.id, number=1, version_id=SNAP, created_by="u"),
                   DatasetVersion(dataset_id=raw.id, number=1, version_id="sha256:" + "b" * 64, created_by="u")])
        source = "u/raw:1"
        for n in range(1, CHAIN + 1):
            row = job(n, source)
            s.add(row)
            s.flush()
            s.add(DatasetVersion(dataset_id=chain.id, number=n, version_id=f"sha256:{n:064d}", created_by="u",
                                 source_job_id=row.id))
            if n == 1:
                s.add(DatasetVersion(dataset_id=pub.id, number=1, version_id="sha256:" + "c" * 64, created_by="u",
                                     source_job_id=row.id))
            source = f"u/chain:{n}"
        s.add(job(1, "u/pub:1", owner="v"))
        ep = Endpoint(owner="u", name="ep")
        s.add(ep)
        s.flush()
        s.add(EndpointVersion(endpoint_id=ep.id, number=1, state="ready", project="p", snapshot=SNAP, entry="app.py",
                              environment="cpu", image="x", cpus=1, memory=1, created_by="u",
                              inputs=json.dumps([{"source": f"u/p/{CHAIN}/output", "kind": "job", "mount": "m"}])))
    yield sessions
    engine.dispose()


def test_the_whole_chain_up_from_the_endpoint(sessions: sessionmaker[Session]) -> None:
    g = LineageBuilder(sessions=sessions, prefix="/p/").graph(Caller("u", False), "u/ep", 1000)
    assert g["root"] == "endpoint:u/ep:1" and not g["truncated"]
    kinds = [n["kind"] for n in g["nodes"]]
    assert kinds.count("job") == CHAIN and kinds.count("dataset") == CHAIN and kinds.count("snapshot") == 1
    assert {"from": "job:u/p/1", "to": "dataset:u/chain:1"} in g["edges"]
    assert {"from": "dataset:u/raw:1", "to": "job:u/p/1"} in g["edges"]


def test_others_see_public_versions_only(sessions: sessionmaker[Session]) -> None:
    builder = LineageBuilder(sessions=sessions, prefix="/p/")
    g = builder.graph(Caller("v", False), "job:v/p/1")
    assert {n["ref"] for n in g["nodes"]} == {"job:v/p/1", "dataset:u/pub:1"}  # not u's job that made it
    for ref in ("u/p/1", "u/raw@1", "u/ep", f"snapshot:u/p/{SNAP}"):
        with pytest.raises(NotFound):
            builder.graph(Caller("v", False), ref)
    # the owner sees v's job among pub:1's children only as an admin would: it is v's
    assert "job:v/p/1" not in {n["ref"] for n in builder.graph(Caller("u", False), "u/pub@1")["nodes"]}
    assert "job:v/p/1" in {n["ref"] for n in builder.graph(Caller("root", True), "u/pub@1")["nodes"]}


def test_depth_cut_says_truncated(sessions: sessionmaker[Session]) -> None:
    g = LineageBuilder(sessions=sessions, prefix="/p/").graph(Caller("u", False), "u/raw@1", 2)
    assert {n["ref"] for n in g["nodes"]} == {"dataset:u/raw:1", "job:u/p/1", "dataset:u/chain:1",
                                              "dataset:u/pub:1"}
    assert g["truncated"] is True


def test_max_nodes_cuts(sessions: sessionmaker[Session]) -> None:
    g = LineageBuilder(sessions=sessions, prefix="/p/", max_nodes=10).graph(Caller("u", False), "u/ep", 1000)
    assert len(g["nodes"]) == 10 and g["truncated"] is True


def test_bad_refs_and_a_job_output(sessions: sessionmaker[Session]) -> None:
    builder = LineageBuilder(sessions=sessions, prefix="/p/")
    for ref in ("", "job:u/../1", "u/raw@", "u/raw@-1x", "endpoint:u/ep:v", "a/b/c/d"):
        with pytest.raises(BadRequest):
            builder.graph(Caller("u", False), ref)
    assert builder.graph(Caller("u", False), "u/p/3/output", 1)["root"] == "job:u/p/3"


def model_version(s: Session, owner: str, name: str, job_number: int, public: bool = False) -> int:
    """A model (a kind 'model' Dataset) with version 1 registered from u/p/JOB; its version's pk."""
    model = Dataset(owner=owner, name=name, kind="model", public=public)
    s.add(model)
    s.flush()
    v = DatasetVersion(dataset_id=model.id, number=1, version_id="sha256:" + "d" * 64, created_by=owner)
    s.add(v)
    s.flush()
    made_by = s.query(Job).filter_by(owner="u", project="p", number=job_number).one()
    s.add(ModelVersion(version_pk=v.id, job_id=made_by.id, source_job=f"u/p/{job_number}"))
    s.add(ModelAlias(model_id=model.id, name="production", number=1, moved_by=owner))
    return v.id


def serving(s: Session, owner: str, name: str, model_pk: int) -> None:
    ep = Endpoint(owner=owner, name=name)
    s.add(ep)
    s.flush()
    s.add(EndpointVersion(endpoint_id=ep.id, number=1, state="ready", project="p", snapshot=SNAP, entry="app.py",
                          environment="cpu", image="x", cpus=1, memory=1, created_by=owner, model_version_pk=model_pk))


@pytest.fixture(scope="module")
def models(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """u/iris:1 (private, named like u's dataset and endpoint would be) from u/p/50, served by u/iris-api;
    u/shared:1 (public) from u/p/1, served by v's endpoint v/borrowed."""
    with sessions.begin() as s:
        s.add(Dataset(owner="u", name="iris"))  # a dataset of the same name stays apart
        serving(s, "u", "iris-api", model_version(s, "u", "iris", CHAIN))
        serving(s, "v", "borrowed", model_version(s, "u", "shared", 1, public=True))
    return sessions


def test_model_versions_join_jobs_and_endpoints(models: sessionmaker[Session]) -> None:
    builder = LineageBuilder(sessions=models, prefix="/p/")
    g = builder.graph(Caller("u", False), "u/iris-api", 1000)
    nodes = {n["ref"]: n for n in g["nodes"]}
    edges = {(e["from"], e["to"]) for e in g["edges"]}
    assert {("model:u/iris:1", "endpoint:u/iris-api:1"), (f"job:u/p/{CHAIN}", "model:u/iris:1"),
            ("dataset:u/raw:1", "job:u/p/1")} <= edges
    assert nodes["model:u/iris:1"]["kind"] == "model" and nodes["model:u/iris:1"]["url"] == "/p/models/u/iris"
    assert not any(ref.startswith("dataset:u/iris") or ref.startswith("dataset:u/shared") for ref in nodes)
    down = {n["ref"] for n in builder.graph(Caller("u", False), f"u/p/{CHAIN}")["nodes"]}
    assert {"model:u/iris:1", "endpoint:u/iris-api:1", f"dataset:u/chain:{CHAIN}"} <= down
    assert builder.graph(Caller("u", False), "model:iris@production")["root"] == "model:u/iris:1"
    assert builder.graph(Caller("u", False), "model:u/iris")["root"] == "model:u/iris:1"  # the latest
    with pytest.raises(NotFound):
        builder.graph(Caller("u", False), "u/iris@1")  # a model version is not a dataset version


def test_models_follow_the_access_rule(models: sessionmaker[Session]) -> None:
    builder = LineageBuilder(sessions=models, prefix="/p/")
    for ref in ("model:u/iris:1", "model:u/iris@production", "model:u/iris"):
        with pytest.raises(NotFound):
            builder.graph(Caller("v", False), ref)
    g = builder.graph(Caller("v", False), "v/borrowed")  # v's endpoint on u's shared model
    assert {n["ref"] for n in g["nodes"]} == {"endpoint:v/borrowed:1", "model:u/shared:1"}  # not u's job
    assert "endpoint:v/borrowed:1" not in {n["ref"] for n in builder.graph(Caller("u", False), "model:shared:1")["nodes"]}
    assert "endpoint:v/borrowed:1" in {n["ref"] for n in builder.graph(Caller("root", True), "model:u/shared:1")["nodes"]}
    for ref in ("model:", "model:u/iris:x", "model:u/iris@1", "model:a/b/c", "model:u/iris@bad name"):
        with pytest.raises(BadRequest):
            builder.graph(Caller("u", False), ref)


def test_a_kind_added_as_data(sessions: sessionmaker[Session]) -> None:
    """What the model registry will do: one more Kind, and a parent link into it."""
    def model_node(ctx: Context, ref: Ref) -> Node | None:
        return Node("model_version", str(ref), f"{ref.owner}/{ref.name}:{ref.item}", "", "")

    def model_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
        yield Ref("job", "u", "p", str(CHAIN))

    def endpoint_parents(ctx: Context, ref: Ref) -> Iterator[Ref]:
        yield Ref("model_version", "u", "iris", "3")

    kinds = {**KINDS, "model_version": Kind(model_node, model_parents, KINDS["snapshot"].parents),
             "endpoint": Kind(KINDS["endpoint"].node, endpoint_parents, KINDS["endpoint"].children)}
    g = LineageBuilder(sessions=sessions, prefix="/p/", kinds=kinds).graph(Caller("u", False), "u/ep", 2)
    assert ("model_version:u/iris:3", "endpoint:u/ep:1") in {(e["from"], e["to"]) for e in g["edges"]}
    assert (f"job:u/p/{CHAIN}", "model_version:u/iris:3") in {(e["from"], e["to"]) for e in g["edges"]}
