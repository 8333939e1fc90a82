"""Did the job queue keep its fair-share promise? Checked afterwards from the job records alone.

The queue (jobs/policy.py) gives the next slot to the owner with the fewest active jobs
(``starting`` or ``running``). Each record says when the job was queued (``created_at``), given
its slot (``picked_at``: one instant per pick decision) and ended (``finished_at``), so the
state of the queue at every decision can be rebuilt:

- **fair-share violation**: a job picked for owner U, who already held *n* slots (counting U's
  jobs picked earlier in the same decision), while another owner V had a job waiting and held
  fewer than *n*. With a per-user limit of 2 this is exactly "U got a second slot while V, with
  a job waiting, had none".
- **limit violation**: more active jobs than ``max_running`` on the platform, or than
  ``max_running_per_user`` for one owner, right after a decision.

Timestamps are taken before their transaction commits, so a decision may not yet have seen
a job that ended, or was submitted, a few milliseconds before its ``picked_at``. ``slack``
(seconds) gives the waiting side that benefit of the doubt: a waiting owner's job still
counts as active until ``slack`` after its ``finished_at``, and a job counts as waiting only
from ``slack`` after its ``created_at``. No violation is reported that the race could
explain; a real one (a whole decision that skipped an idle owner) is not hidden by it.
``started_at`` is not used: the time from pick to start differs from job to job (copying
code, creating the container), so the order of starts is not the order of picks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Slot:
    """One job's life in the queue, in seconds since the epoch (None: not yet)."""

    name: str
    owner: str
    created: float
    picked: float | None
    finished: float | None

    @classmethod
    def from_record(cls, job: dict) -> Slot:
        def ts(key: str) -> float | None:
            value = job.get(key)
            return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

        created = ts("created_at")
        assert created is not None, job
        return cls(job["id"], job["owner"], created, ts("picked_at"), ts("finished_at"))

    def active_at(self, t: float, grace: float = 0.0) -> bool:
        """Holding a slot just before the decision at ``t`` (ended no earlier than ``t - grace``)."""
        return self.picked is not None and self.picked < t and (self.finished is None or self.finished > t - grace)

    def waiting_at(self, t: float, slack: float) -> bool:
        """Queued (and visible to the decision at ``t``) but not picked by it or an earlier one."""
        queued = self.created < t - slack and (self.picked is None or self.picked > t)
        return queued and (self.finished is None or self.finished > t)  # a queued job stopped earlier left


@dataclass
class Report:
    decisions: int = 0
    picked: int = 0
    fair_share: list[str] = field(default_factory=list)  # one line per job picked out of turn
    limits: list[str] = field(default_factory=list)  # one line per decision that broke a limit
    max_active: int = 0
    max_active_per_user: int = 0


def check(records: Iterable[dict], max_running: int, max_running_per_user: int, slack: float = 0.5) -> Report:
    """Replay every pick decision of ``records`` and list what broke fair share or a limit."""
    slots = [Slot.from_record(r) for r in records]
    by_decision: dict[float, list[Slot]] = defaultdict(list)
    for s in slots:
        if s.picked is not None:
            by_decision[s.picked].append(s)
    report = Report(decisions=len(by_decision), picked=sum(len(v) for v in by_decision.values()))
    for t in sorted(by_decision):
        _check_decision(t, by_decision[t], slots, max_running, max_running_per_user, slack, report)
    return report


def _check_decision(t: float, picked: list[Slot], slots: list[Slot], max_running: int, per_user: int,
                    slack: float, report: Report) -> None:
    before = Counter(s.owner for s in slots if s.active_at(t))
    lenient = Counter(s.owner for s in slots if s.active_at(t, slack))
    waiting = {s.owner for s in slots if s.waiting_at(t, slack)}
    new = Counter(s.owner for s in picked)
    for owner, n in sorted(new.items()):
        for k in range(n):  # the k-th of this owner's picks in the decision found it holding before+k
            holding = before[owner] + k
            starved = sorted(v for v in waiting if v != owner and lenient[v] < holding)
            if starved:
                report.fair_share.append(f"t={t:.3f}: {owner} got slot {holding + 1} while {starved[0]} "
                                         f"(and {len(starved) - 1} more) waited with {lenient[starved[0]]}")
    after = before + new
    total = sum(after.values())
    report.max_active = max(report.max_active, total)
    report.max_active_per_user = max([report.max_active_per_user, *after.values()])
    if max_running and total > max_running:
        report.limits.append(f"t={t:.3f}: {total} active > max_running {max_running}")
    over = sorted(o for o, n in after.items() if per_user and n > per_user)
    if over:
        report.limits.append(f"t={t:.3f}: {over} above max_running_per_user {per_user}")
