"""What the MLflow routes refuse before anything is kept (jobs_bridge/jobs/tracking.py), no platform."""

from __future__ import annotations

import pytest

from jobs_bridge.errors import BadRequest, NotFound, TooLarge
from jobs_bridge.jobs.tracking import Tracking, items, metric_point, pair, run_id_of


@pytest.mark.parametrize("value", [10**400, "NaN", "1.0", None, True, float("inf")])
def test_a_metric_is_a_finite_number(value: object) -> None:
    with pytest.raises(BadRequest):
        metric_point({"key": "loss", "value": value})


def test_metric_and_pair_fields() -> None:
    assert metric_point({"key": "loss", "value": 3, "step": "2"}) == {"metric": "loss", "value": 3.0, "step": 2}
    for bad in ({"key": "", "value": 1}, {"key": "x" * 129, "value": 1}, {"key": "a\x00b", "value": 1},
                {"key": "k", "value": 1, "step": 2**31}, {"key": "k", "value": 1, "step": 1.5}):
        with pytest.raises(BadRequest):
            metric_point(bad)
    assert pair({"key": "lr", "value": ""}, 10) == ("lr", "")
    with pytest.raises(BadRequest):
        pair({"key": "lr", "value": "x" * 11}, 10)
    with pytest.raises(TooLarge):
        items({"params": [{}] * 101}, "params")
    with pytest.raises(BadRequest):
        items({"tags": {"a": "b"}}, "tags")


@pytest.mark.parametrize("run_id,error", [(None, BadRequest), ("", BadRequest), (7, BadRequest),
                                          ("abc", NotFound), ("1/../2", NotFound), ("99999999999", NotFound)])
def test_run_ids(run_id: object, error: type) -> None:
    with pytest.raises(error):
        Tracking.run_pk(run_id)
    assert run_id_of({"run_uuid": "12"}) == "12"
