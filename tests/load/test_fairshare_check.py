"""The fair-share replay (tests/support/fairshare.py) on hand-written schedules: it must find a
user served out of turn and a broken limit, and must not blame a pick that raced a finish."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.support.fairshare import check

T0 = 1_800_000_000.0


def job(name: str, owner: str, created: float, picked: float | None, finished: float | None) -> dict:
    def iso(t: float | None) -> str | None:
        return None if t is None else datetime.fromtimestamp(T0 + t, timezone.utc).isoformat()

    return {"id": name, "owner": owner, "created_at": iso(created), "picked_at": iso(picked),
            "finished_at": iso(finished)}


def test_round_robin_schedule_is_fair() -> None:
    # two slots, two per user: ann's second job waits until bob has had his
    records = [job("a1", "ann", 0, 1, 5), job("a2", "ann", 0, 5, 9), job("b1", "bob", 0, 1, 6),
               job("b2", "bob", 0, 6, 10)]
    report = check(records, max_running=2, max_running_per_user=2)
    assert report.fair_share == [] and report.limits == []
    assert (report.decisions, report.picked, report.max_active, report.max_active_per_user) == (3, 4, 2, 1)


def test_second_slot_while_another_user_waits_with_none_is_a_violation() -> None:
    records = [job("a1", "ann", 0, 1, 9), job("a2", "ann", 0, 2, 9), job("b1", "bob", 0, 9, 12)]
    report = check(records, max_running=2, max_running_per_user=2)
    assert len(report.fair_share) == 1 and "ann got slot 2 while bob" in report.fair_share[0]


def test_two_slots_in_one_decision_while_another_waits() -> None:
    # one decision gave ann both free slots; bob, queued before it, got nothing
    records = [job("a1", "ann", 0, 1, 9), job("a2", "ann", 0, 1, 9), job("b1", "bob", 0, 9, 12)]
    assert len(check(records, max_running=2, max_running_per_user=2).fair_share) == 1


def test_second_slot_when_nobody_else_waits_is_fair() -> None:
    records = [job("a1", "ann", 0, 1, 9), job("a2", "ann", 0, 1, 9), job("b1", "bob", 3, 9, 12)]
    assert check(records, max_running=2, max_running_per_user=2).fair_share == []


def test_a_pick_racing_a_finish_or_a_submit_is_not_blamed() -> None:
    # bob's job ended 0.1 s before the pick's timestamp (the pick may not have seen it), and
    # cid submitted 0.1 s before it (the pick may not have seen that either)
    records = [job("a1", "ann", 0, 1, 20), job("b1", "bob", 0, 1, 4.9), job("a2", "ann", 0, 5, 20),
               job("b2", "bob", 4, 20, 25), job("c1", "cid", 4.9, 20, 25)]
    assert check(records, max_running=3, max_running_per_user=2).fair_share == []


def test_limits_are_checked() -> None:
    records = [job("a1", "ann", 0, 1, 9), job("a2", "ann", 0, 1, 9), job("a3", "ann", 0, 1, 9),
               job("b1", "bob", 0, 2, 9)]
    report = check(records, max_running=3, max_running_per_user=2)
    # after the first decision ann holds 3 of 2; after the second, 4 run where 3 may
    assert [line.split(": ", 1)[1] for line in report.limits] == [
        "['ann'] above max_running_per_user 2", "4 active > max_running 3", "['ann'] above max_running_per_user 2"]
