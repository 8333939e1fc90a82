"""The lineage graph of one object: its ancestors (what made it) and its descendants (what was
made from it), breadth first up to a depth, each node checked as the caller.

Objects the caller may not see are left out with their edges; a root they may not see is the
same 404 as a missing one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.auth.identity import Caller
from jobs_bridge.errors import NotFound
from jobs_bridge.lineage.kinds import KINDS
from jobs_bridge.lineage.nodes import Context, Kind, Node
from jobs_bridge.lineage.refs import Ref, parse
from jobs_bridge.lineage.world import World

MAX_DEPTH = 1000


class LineageBuilder(LoggingConfigurable):
    max_nodes = Integer(
        2000, help="The most nodes one lineage graph holds; a bigger graph is cut there and marked "
                   "'truncated' (ask again from a node further along). Default 2000.").tag(config=True)
    default_depth = Integer(
        100, help="How many links up and down a lineage graph follows when the request names no "
                  "?depth= (1-1000). Default 100.").tag(config=True)

    def __init__(self, sessions: sessionmaker[Session], prefix: str, kinds: dict[str, Kind] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = sessions
        self.prefix = prefix
        self.kinds = kinds or KINDS

    def graph(self, caller: Caller, ref_text: str, depth: int | None = None) -> dict:
        """``{root, depth, nodes: [{kind, ref, label, state, url}], edges: [{from, to}], truncated}``;
        edges go from parent to child."""
        depth = self.default_depth if depth is None else depth
        ref = parse(ref_text, caller.name)
        with self.sessions() as s:
            ctx = Context(caller, self.prefix, World(s, everyone=caller.admin))
            ctx.world.load(caller.name)  # the caller's own objects can be children of anything they see
            root = self.kinds[ref.kind].node(ctx, ref)
            if root is None:
                raise NotFound(f"{ref} not found (or not shared with you).")
            ref = parse(root.ref, caller.name)  # an endpoint's serving version, named
            walk = _Walk(ctx, self.kinds, self.max_nodes, {root.ref: root})
            walk.run(ref, depth, up=True)
            walk.run(ref, depth, up=False)
        return {"root": root.ref, "depth": depth, "nodes": [n.json() for n in walk.nodes.values()],
                "edges": [{"from": a, "to": b} for a, b in walk.edges], "truncated": walk.truncated}


class _Walk:
    """One breadth-first walk in one direction; nodes and edges are shared by both walks."""

    def __init__(self, ctx: Context, kinds: dict[str, Kind], max_nodes: int, nodes: dict[str, Node]) -> None:
        self.ctx, self.kinds, self.max_nodes = ctx, kinds, max_nodes
        self.nodes = nodes
        self.hidden: set[str] = set()
        self.edges: dict[tuple[str, str], None] = {}  # ordered, without duplicates
        self.truncated = False

    def visible(self, ref: Ref) -> Node | None:
        key = str(ref)
        if key in self.nodes:
            return self.nodes[key]
        if key in self.hidden:
            return None
        kind = self.kinds.get(ref.kind)
        node = kind.node(self.ctx, ref) if kind else None
        if node is None:
            self.hidden.add(key)
            return None
        if len(self.nodes) >= self.max_nodes:
            self.truncated = True
            return None
        self.nodes[key] = node
        return node

    def run(self, root: Ref, depth: int, *, up: bool) -> None:
        seen = {str(root)}
        frontier = [root]
        for _ in range(depth):
            following: list[Ref] = []
            for ref in frontier:
                for other in self._links(ref, up):
                    if self.visible(other) is None:
                        continue
                    edge = (str(other), str(ref)) if up else (str(ref), str(other))
                    self.edges[edge] = None
                    if str(other) not in seen:
                        seen.add(str(other))
                        following.append(other)
            if not following:
                return
            frontier = following
        # cut by the depth: say so when the last layer still had links to follow
        if any(self._exists(other) for ref in frontier for other in self._links(ref, up) if str(other) not in seen):
            self.truncated = True

    def _exists(self, ref: Ref) -> bool:
        """Whether the caller could see ``ref``, without adding it to the graph."""
        if str(ref) in self.nodes:
            return True
        kind = self.kinds.get(ref.kind)
        return str(ref) not in self.hidden and kind is not None and kind.node(self.ctx, ref) is not None

    def _links(self, ref: Ref, up: bool) -> Iterable[Ref]:
        kind = self.kinds[ref.kind]
        return kind.parents(self.ctx, ref) if up else kind.children(self.ctx, ref)
