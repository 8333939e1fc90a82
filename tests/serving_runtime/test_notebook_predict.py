"""A notebook that defines predict(payload) with numpy: numpy results become JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.runtime import RuntimeProcess, start


@pytest.fixture(scope="module")
def model(notebooks_dir: Path) -> Iterator[RuntimeProcess]:
    yield from start(notebooks_dir, "predict_numpy.ipynb")


def test_predict_notebook_returns_numpy_as_json(model: RuntimeProcess) -> None:
    assert requests.get(model.url + "/_floyd/ready").json() == {"status": "ready", "kind": "predict"}
    r = requests.post(model.url + "/predict", json={"x": [1, 1, 1]})
    assert r.status_code == 200
    assert r.json() == {"score": 6.0, "scaled": [1.0, 2.0, 3.0]}


def test_predict_notebook_errors(model: RuntimeProcess) -> None:
    r = requests.post(model.url + "/predict", json={"x": [1]})
    assert r.status_code == 500
    assert r.json() == {"status": 500, "message": "ValueError: x must have 3 values"}
    assert requests.post(model.url + "/predict", data="nope").status_code == 400
