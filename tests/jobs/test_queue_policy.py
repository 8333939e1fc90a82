"""The queue policy on plain data: no Docker, no platform, no clock."""

from __future__ import annotations

from jobs_bridge.jobs.policy import ActiveJob, Decision, QueuedJob, QueueLimits, pick

NO_LIMITS = QueueLimits(0, 0)


def decide(queued: list[QueuedJob], active: list[ActiveJob] | None = None, limits: QueueLimits = NO_LIMITS,
           gpus_free: int = 0, sweep_limits: dict[int, int] | None = None,
           last_start: dict[str, int] | None = None) -> Decision:
    return pick(queued, active or [], limits, gpus_free=gpus_free, sweep_limits=sweep_limits or {},
                last_start=last_start or {})


def test_no_limits_start_everything_oldest_first_within_a_user() -> None:
    d = decide([QueuedJob(3, "ann"), QueuedJob(1, "ann"), QueuedJob(2, "ann")])
    assert d.start == [1, 2, 3] and d.reasons == {}


def test_global_limit_counts_active_jobs_and_names_itself() -> None:
    d = decide([QueuedJob(5, "ann"), QueuedJob(6, "bob"), QueuedJob(7, "cat")], [ActiveJob("dan")],
               QueueLimits(max_running=2))
    assert d.start == [5]
    assert d.reasons == {6: "waiting: the platform runs at most 2 jobs at once",
                         7: "waiting: the platform runs at most 2 jobs at once"}


def test_global_limit_already_exceeded_starts_nothing() -> None:
    d = decide([QueuedJob(1, "ann")], [ActiveJob("bob"), ActiveJob("bob")], QueueLimits(max_running=1))
    assert d.start == [] and d.reasons == {1: "waiting: the platform runs at most 1 jobs at once"}


def test_per_user_limit_holds_one_user_and_not_the_others() -> None:
    d = decide([QueuedJob(1, "ann"), QueuedJob(2, "ann"), QueuedJob(3, "bob")], [ActiveJob("ann")],
               QueueLimits(max_running_per_user=2))
    assert d.start == [3, 1]  # bob has none running, so he goes first
    assert d.reasons == {2: "waiting: at most 2 running jobs per user"}


def test_sweep_concurrency_limits_its_group_only() -> None:
    queued = [QueuedJob(1, "ann", group_id=7), QueuedJob(2, "ann", group_id=7), QueuedJob(3, "ann", group_id=7),
              QueuedJob(4, "ann", group_id=8)]
    d = decide(queued, [ActiveJob("ann", 7)], sweep_limits={7: 2, 8: 0})
    assert d.start == [1, 4]
    assert d.reasons == {2: "waiting: the sweep runs at most 2 at once", 3: "waiting: the sweep runs at most 2 at once"}


def test_gpu_jobs_wait_for_free_gpus_without_blocking_cpu_jobs() -> None:
    queued = [QueuedJob(1, "ann", gpus=2), QueuedJob(2, "bob", gpus=1), QueuedJob(3, "cat")]
    d = decide(queued, gpus_free=1)
    assert d.start == [2, 3]  # bob's one GPU fits, ann's two do not; cat needs none
    assert d.reasons == {1: "waiting for 2 free GPU(s)"}


def test_gpus_taken_within_one_decision_count() -> None:
    d = decide([QueuedJob(1, "ann", gpus=1), QueuedJob(2, "bob", gpus=1)], gpus_free=1)
    assert d.start == [1] and d.reasons == {2: "waiting for 1 free GPU(s)"}


def test_platform_limit_is_named_before_gpus() -> None:
    d = decide([QueuedJob(1, "ann"), QueuedJob(2, "bob", gpus=4)], limits=QueueLimits(max_running=1))
    assert d.start == [1] and d.reasons == {2: "waiting: the platform runs at most 1 jobs at once"}


def test_fair_share_fewest_active_first() -> None:
    queued = [QueuedJob(1, "ann"), QueuedJob(2, "bob")]
    d = decide(queued, [ActiveJob("ann"), ActiveJob("ann"), ActiveJob("bob")], QueueLimits(max_running=4))
    assert d.start == [2]  # bob has fewer running; then the platform is full
    assert d.reasons == {1: "waiting: the platform runs at most 4 jobs at once"}


def test_fair_share_round_robin_by_last_start_then_oldest() -> None:
    queued = [QueuedJob(1, "ann"), QueuedJob(2, "ann"), QueuedJob(3, "bob"), QueuedJob(4, "cat")]
    # ann started most recently, cat never: cat, then bob, then ann (one slot each round).
    d = decide(queued, limits=QueueLimits(max_running_per_user=1), last_start={"ann": 5, "bob": 2})
    assert d.start == [4, 3, 1]
    assert d.reasons == {2: "waiting: at most 1 running jobs per user"}


def test_round_robin_alternates_between_equal_users_within_one_decision() -> None:
    queued = [QueuedJob(1, "ann"), QueuedJob(2, "ann"), QueuedJob(3, "ann"), QueuedJob(4, "bob"), QueuedJob(5, "bob")]
    d = decide(queued, limits=QueueLimits(max_running=4))
    assert d.start == [1, 4, 2, 5]
    assert d.reasons == {3: "waiting: the platform runs at most 4 jobs at once"}


def test_last_start_comes_back_updated_for_the_next_decision() -> None:
    one_slot = QueueLimits(max_running=1)
    first = decide([QueuedJob(1, "ann"), QueuedJob(2, "bob")], limits=one_slot)
    assert first.start == [1] and first.last_start["ann"] > first.last_start.get("bob", 0)
    # ann's job ended; ann and bob both wait with nothing running: bob's turn.
    second = decide([QueuedJob(3, "ann"), QueuedJob(2, "bob")], limits=one_slot, last_start=first.last_start)
    assert second.start == [2]
    third = decide([QueuedJob(3, "ann"), QueuedJob(4, "bob")], limits=one_slot, last_start=second.last_start)
    assert third.start == [3]


def test_the_input_order_does_not_matter_and_is_not_changed() -> None:
    queued = [QueuedJob(9, "ann"), QueuedJob(2, "bob"), QueuedJob(4, "ann")]
    last = {"bob": 1}
    d = decide(list(queued), limits=QueueLimits(max_running=2), last_start=last)
    assert d.start == [4, 2]  # ann never started: her oldest job first, then bob
    assert last == {"bob": 1} and queued[0].id == 9


def test_the_fallback_reason() -> None:
    from jobs_bridge.jobs.policy import _tally, why_waiting

    tally = _tally([], QueueLimits(max_running=3), gpus_free=0, last_start={})
    assert why_waiting(QueuedJob(1, "ann"), tally, QueueLimits(max_running=3), {}) == "waiting for a free slot"
