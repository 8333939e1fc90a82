"""Cells that do not compile, as Kernel Gateway treats them: it compiles an endpoint's cell only
when its route is called, so one broken endpoint (a Python 2 ``print "x"``) costs that route a
500 and nothing else; an unannotated cell still runs at start-up, and its failure stops the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.runtime import RuntimeProcess, start, write_notebook

PY2_PRINT = "Error SyntaxError: Missing parentheses in call to 'print'"

CELLS = [
    "import json\nCALLS = []",
    "# GET /ok\nprint('fine', READY)",
    '# GET /broken\nprint "python 2"',
    "# POST /broken\nprint('the POST cell compiles')",
    "# GET /info\nCALLS.append('info')\nprint('info body')",
    '# ResponseInfo GET /info\nprint json.dumps({"status": 201})',
    "# GET /calls\nprint(json.dumps(CALLS))",
    "READY = 'after the broken cells'",  # an init cell after them still runs at start-up
]


@pytest.fixture(scope="module")
def nb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    directory = tmp_path_factory.mktemp("compile")
    write_notebook(directory, "partly_broken.ipynb", CELLS)
    yield from start(directory, "partly_broken.ipynb")


def test_broken_endpoint_cell_answers_500_with_the_syntax_error(nb: RuntimeProcess) -> None:
    for _ in range(2):  # every call, as Kernel Gateway compiles the cell on every call
        r = requests.get(nb.url + "/broken")
        assert r.status_code == 500
        assert r.headers["Content-Type"] == "text/plain"
        assert r.text.startswith(PY2_PRINT) and r.text.endswith(" \n")
        assert "partly_broken.ipynb GET /broken" in r.text  # the cell, as the traceback names it
    assert 'print "python 2"' in nb.log()  # the traceback shows the line, as for other cell errors


def test_every_other_route_serves(nb: RuntimeProcess) -> None:
    r = requests.get(nb.url + "/ok")
    assert (r.status_code, r.text) == (200, "fine after the broken cells\n")
    r = requests.post(nb.url + "/broken")  # same path, another verb: its own cell
    assert (r.status_code, r.text) == (200, "the POST cell compiles\n")


def test_broken_response_info_answers_500_for_its_route(nb: RuntimeProcess) -> None:
    requests.get(nb.url + "/calls").raise_for_status()
    before = requests.get(nb.url + "/calls").json().count("info")
    r = requests.get(nb.url + "/info")
    assert r.status_code == 500
    assert r.text.startswith(PY2_PRINT)
    # The endpoint's cell ran before its ResponseInfo failed, as in Kernel Gateway.
    assert requests.get(nb.url + "/calls").json().count("info") == before + 1


def test_start_log_names_the_broken_cells(nb: RuntimeProcess) -> None:
    log = nb.log()
    assert (
        "warning: GET /broken answers 500, a cell does not compile: SyntaxError: Missing parentheses" in log
    )
    assert "warning: GET /info answers 500, a cell does not compile" in log
    assert "(partly_broken.ipynb ResponseInfo GET /info, line 2)" in log
    assert "warning: POST /broken" not in log and "warning: GET /ok" not in log


def test_specs_list_the_broken_route(nb: RuntimeProcess) -> None:
    swagger = requests.get(nb.url + "/_api/spec/swagger.json").json()
    assert set(swagger["paths"]["/broken"]) == {"get", "post"}
    assert "get" in swagger["paths"]["/info"]
    openapi = requests.get(nb.url + "/openapi.json").json()
    assert set(openapi["paths"]["/broken"]) == {"get", "post"}
    assert set(openapi["paths"]) == {"/ok", "/broken", "/info", "/calls"}


def test_broken_unannotated_cell_fails_the_start(tmp_path: Path) -> None:
    cells = [
        '# GET /x\nprint "an endpoint that does not compile is not what stops the start"',
        "print('init cell 2 ran')",
        'print "python 2 in an init cell"',
        "# GET /y\nprint(1)",
    ]
    write_notebook(tmp_path, "broken_init.ipynb", cells)
    runtime = RuntimeProcess(tmp_path, "broken_init.ipynb")
    try:
        assert runtime.wait_exit() == 1
        log = runtime.log()
        assert "cannot serve broken_init.ipynb: broken_init.ipynb code cell 3 failed at start-up" in log
        assert PY2_PRINT in log
        assert 'print "python 2 in an init cell"' in log  # the traceback, for the deploy's log tail
        assert "init cell 2 ran" in log  # cells run in order up to the broken one, as in a kernel
    finally:
        runtime.terminate()
