"""The pieces every kind of lineage node shares: the node as data, the contract of a kind, and
the per-request context (who asks, and the rows read for this request)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from jobs_bridge.auth.identity import Caller
from jobs_bridge.lineage.refs import Ref
from jobs_bridge.lineage.world import World


@dataclass
class Node:
    """What the graph shows of one object; ``url`` is its page (empty when it has none)."""

    kind: str
    ref: str
    label: str
    state: str = ""
    url: str = ""

    def json(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Context:
    """One lineage request: who asks, and the rows of the owners it touched (``world``)."""

    caller: Caller
    prefix: str  # the service prefix, for page URLs
    world: World

    def may_see(self, owner: str, public: bool = False) -> bool:
        """The API's visibility rule (auth/rules.check_access), as a yes/no."""
        return public or self.caller.admin or self.caller.name == owner



@dataclass(frozen=True)
class Kind:
    """One kind of node. ``node`` answers None when the object is missing or the caller may not
    see it (then it is left out of the graph); ``parents``/``children`` yield refs of neighbours.

    Adding a kind (a model version, say) is writing these three functions and registering them
    in ``lineage.kinds.KINDS``."""

    node: Callable[[Context, Ref], Node | None]
    parents: Callable[[Context, Ref], Iterable[Ref]]
    children: Callable[[Context, Ref], Iterable[Ref]]
