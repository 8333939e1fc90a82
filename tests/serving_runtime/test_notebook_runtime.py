"""Annotated notebooks served by the in-process kernel: our own features beyond the KG examples."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.runtime import RuntimeProcess, start, write_notebook


@pytest.fixture(scope="module")
def nb(notebooks_dir: Path) -> Iterator[RuntimeProcess]:
    yield from start(notebooks_dir, "counter_api.ipynb")


def test_ready_and_route_table_logged(nb: RuntimeProcess) -> None:
    assert requests.get(nb.url + "/_floyd/ready").json() == {"status": "ready", "kind": "notebook"}
    log = nb.log()
    assert f"[floyd] serving counter_api.ipynb (notebook) on 127.0.0.1:{nb.port}" in log
    assert re.search(r"\[floyd\]\s+GET\s+/hello/:name", log)


def test_path_params_are_decoded(nb: RuntimeProcess) -> None:
    r = requests.get(nb.url + "/hello/bob")
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (200, "hello bob\n", "text/plain")
    # text/plain without a charset, as Kernel Gateway sends it: the bytes are UTF-8
    assert requests.get(nb.url + "/hello/J%C3%BCrgen%20K").content.decode() == "hello Jürgen K\n"


def test_constant_route_wins_over_path_param(nb: RuntimeProcess) -> None:
    assert requests.get(nb.url + "/hello/world").text == "the constant route wins\n"


def test_query_args_are_lists(nb: RuntimeProcess) -> None:
    assert requests.get(nb.url + "/search?a=1&a=2&b=").json() == {"a": ["1", "2"], "b": [""]}


def test_bodies_by_content_type(nb: RuntimeProcess) -> None:
    echo = nb.url + "/echo"
    assert requests.post(echo, json={"x": [1, 2]}).json() == {
        "body": {"x": [1, 2]},
        "content_type": "application/json",
    }
    form = requests.post(echo, data={"a": ["1", "2"], "b": "3"}).json()
    assert form["body"] == {"a": ["1", "2"], "b": ["3"]}
    multipart = requests.post(echo, data={"field": "v"}, files={"upload": ("f.txt", b"file bytes")}).json()
    assert multipart["body"] == {"field": ["v"]}  # files are left out, as Kernel Gateway does
    text = requests.post(echo, data="just text", headers={"Content-Type": "text/plain"}).json()
    assert text["body"] == "just text"
    broken = requests.post(echo, data="{oops", headers={"Content-Type": "application/json"}).json()
    assert broken["body"] == "{oops"


def test_response_info_sets_status_and_headers(nb: RuntimeProcess) -> None:
    r = requests.post(nb.url + "/items", json={"name": "lamp"})
    assert r.status_code == 201
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Location"] == "/items/7"
    assert r.json() == {"id": 7, "name": "lamp"}


def test_state_stays_warm_and_init_cells_ran_once(nb: RuntimeProcess) -> None:
    requests.delete(nb.url + "/counter").raise_for_status()
    assert [requests.post(nb.url + "/counter").text for _ in range(3)] == ["1\n", "2\n", "3\n"]
    assert requests.get(nb.url + "/counter").json() == {"hits": 3, "init_runs": 1}


def test_requests_are_serialized_like_one_kernel(nb: RuntimeProcess) -> None:
    """Concurrent increments never race: cells run one at a time on the kernel thread."""
    requests.delete(nb.url + "/counter").raise_for_status()
    threads = [threading.Thread(target=requests.post, args=(nb.url + "/counter",)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert requests.get(nb.url + "/counter").json()["hits"] == 20


def test_unknown_path_404_and_wrong_method_405(nb: RuntimeProcess) -> None:
    missing = requests.get(nb.url + "/not/an/endpoint")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "Not Found" and missing.json()["status"] == 404
    wrong = requests.put(nb.url + "/counter")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST, GET, DELETE"


def test_exception_in_cell_is_500_with_error_text(nb: RuntimeProcess) -> None:
    r = requests.get(nb.url + "/error")
    assert r.status_code == 500
    assert r.text == "Error ZeroDivisionError: division by zero \n"
    assert "ZeroDivisionError" in nb.log()
    assert requests.get(nb.url + "/hello/again").status_code == 200  # the kernel survives


def test_execute_result_when_nothing_printed(nb: RuntimeProcess) -> None:
    assert requests.get(nb.url + "/result").json() == {"text/plain": "42"}


def test_magics_and_shell_commands(nb: RuntimeProcess) -> None:
    assert requests.get(nb.url + "/shell").text == "from-a-shell-command\n"
    assert requests.get(nb.url + "/env").text == "1 yes\n"  # KERNEL_GATEWAY=1 and the %env init cell


def test_notebook_with_predict_too(nb: RuntimeProcess) -> None:
    requests.delete(nb.url + "/counter").raise_for_status()
    r = requests.post(nb.url + "/predict", json={"q": 1})
    assert r.json() == {"echo": {"q": 1}, "hits": 0}


def test_openapi_matches_route_table(nb: RuntimeProcess) -> None:
    """The OpenAPI document and the logged route table describe the same routes."""
    logged = {
        (verb.lower(), re.sub(r":(\w+)", r"{\1}", path))
        for verb, path in re.findall(r"^\[floyd\]\s+(GET|POST|PUT|DELETE|PATCH)\s+(\S+)$", nb.log(), re.M)
    }
    doc = requests.get(nb.url + "/openapi.json").json()
    documented = {(verb, path) for path, item in doc["paths"].items() for verb in item}
    assert documented == logged
    assert ("post", "/predict") in documented
    params = doc["paths"]["/hello/{name}"]["get"]["parameters"]
    assert params == [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def test_failing_init_cell_stops_the_start(tmp_path: Path) -> None:
    cells = ["import json", "raise RuntimeError('no model file')", "# GET /x\nprint(1)"]
    write_notebook(tmp_path, "broken.ipynb", cells)
    runtime = RuntimeProcess(tmp_path, "broken.ipynb")
    try:
        assert runtime.wait_exit() == 1
        log = runtime.log()
        assert "RuntimeError: no model file" in log and "broken.ipynb code cell 2" in log
    finally:
        runtime.terminate()


def test_notebook_without_endpoints_is_refused(tmp_path: Path) -> None:
    write_notebook(tmp_path, "plain.ipynb", ["x = 1"])
    runtime = RuntimeProcess(tmp_path, "plain.ipynb")
    try:
        assert runtime.wait_exit() == 1
        assert "has no endpoints" in runtime.log()
    finally:
        runtime.terminate()


def test_non_python_notebook_is_refused(tmp_path: Path) -> None:
    path = write_notebook(tmp_path, "api.ipynb", ["# GET /x\nprint(1)"])
    path.write_text(path.read_text().replace('"language": "python"', '"language": "R"'))
    runtime = RuntimeProcess(tmp_path, "api.ipynb")
    try:
        assert runtime.wait_exit() == 1
        assert "api.ipynb is a R notebook; only Python notebooks can be served" in runtime.log()
    finally:
        runtime.terminate()
