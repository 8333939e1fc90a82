"""Issue point 9: notebooks written for Kernel Gateway's notebook-http mode serve unchanged and
answer as its documentation says.

The fixture notebooks are modelled on Kernel Gateway's documentation and examples:
https://jupyter-kernel-gateway.readthedocs.io/en/latest/http-mode.html (kg_docs),
etc/api_examples/api_intro.ipynb (kg_contacts), etc/api_examples/setting_response_metadata.ipynb
(kg_person) and etc/api_examples/endpoint_ordering.ipynb (kg_ordering) in jupyter/kernel_gateway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.runtime import RuntimeProcess, start


@pytest.fixture(scope="module")
def docs(notebooks_dir: Path) -> Iterator[RuntimeProcess]:
    yield from start(notebooks_dir, "kg_docs.ipynb")


@pytest.fixture(scope="module")
def contacts(notebooks_dir: Path) -> Iterator[RuntimeProcess]:
    yield from start(notebooks_dir, "kg_contacts.ipynb")


@pytest.fixture(scope="module")
def person(notebooks_dir: Path) -> Iterator[RuntimeProcess]:
    yield from start(notebooks_dir, "kg_person.ipynb")


@pytest.fixture(scope="module")
def ordering(notebooks_dir: Path) -> Iterator[RuntimeProcess]:
    yield from start(notebooks_dir, "kg_ordering.ipynb")


# -- http-mode.md, section by section ------------------------------------------------------


def test_cells_sharing_an_annotation_are_concatenated(docs: RuntimeProcess) -> None:
    """ "Multiple cells may share the same annotation. Their content is concatenated"."""
    r = requests.get(docs.url + "/hello/world")
    assert r.status_code == 200
    assert r.text == "I'm cell #1\nI'm cell #2\n"


def test_path_parameters(docs: RuntimeProcess) -> None:
    """``# GET /hello/:firstName/:lastName``: REQUEST.path holds the segments."""
    assert requests.get(docs.url + "/hello/Jane/Doe").text == "hello Jane Doe\n"


def test_query_parameters_are_sequences(docs: RuntimeProcess) -> None:
    """ "each value is a sequence ... of strings from the original URL"."""
    r = requests.get(docs.url + "/people", params=[("person", "governor"), ("person", "rick")])
    assert r.text == "hello governor, rick\n"


def test_headers_are_visible_to_the_cell(docs: RuntimeProcess) -> None:
    for content_type in ["text/plain", "application/json", "application/atom+xml", "foo"]:
        r = requests.get(docs.url + "/content-type", headers={"Content-Type": content_type})
        assert r.text == f"{content_type}\n"


def test_response_info_example_from_the_docs(docs: RuntimeProcess) -> None:
    """The ``# POST /person`` example with its ``# ResponseInfo POST /person`` companion.

    The docs' sample response shows ``200 OK`` although the companion cell sets 201; Kernel
    Gateway's handler applies the status, so 201 is what it answers, and so do we.
    """
    r = requests.post(docs.url + "/person", json={"name": "Ada"})
    assert r.status_code == 201
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"id": 123}


def test_default_status_and_content_type(docs: RuntimeProcess) -> None:
    """ "the response defaults to status 200 OK and Content-Type: text/plain"."""
    r = requests.get(docs.url + "/hello/world")
    assert (r.status_code, r.headers["Content-Type"]) == (200, "text/plain")


def test_stdout_is_the_body_and_stderr_is_dropped(docs: RuntimeProcess) -> None:
    assert requests.get(docs.url + "/stderr").text == "I am text on stdout\n"


def test_execute_result_is_the_body_when_nothing_is_printed(docs: RuntimeProcess) -> None:
    """ "The response body will be the content.data structure in the ... execute_result message"."""
    assert requests.get(docs.url + "/execute_result").content == b'{"text/plain": "2"}'


def test_state_is_kept_between_requests(docs: RuntimeProcess) -> None:
    assert requests.get(docs.url + "/message").text == "hello {}\n"
    assert requests.put(docs.url + "/message", data="hola {}").status_code == 200
    assert requests.get(docs.url + "/message").text == "hola {}\n"


def test_status_without_body(docs: RuntimeProcess) -> None:
    r = requests.get(docs.url + "/nocontent")
    assert (r.status_code, r.content) == (204, b"")


def test_unsupported_method_is_405_and_unknown_path_404(docs: RuntimeProcess) -> None:
    """ "If the HTTP request method is not one supported at the given path, the status is 405"."""
    assert requests.delete(docs.url + "/message").status_code == 405
    missing = requests.get(docs.url + "/not/an/endpoint")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "Not Found"


def test_swagger_spec(docs: RuntimeProcess) -> None:
    """ "The resource /_api/spec/swagger.json is automatically generated from the notebook";
    "every response is listed as having a status of 200 OK"."""
    ok = {"responses": {"200": {"description": "Success"}}}
    r = requests.get(docs.url + "/_api/spec/swagger.json")
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {
        "swagger": "2.0",
        "info": {"version": "0.0.0", "title": "kg_docs"},
        "paths": {
            "/hello/world": {"get": ok},
            "/hello/:firstName/:lastName": {"get": ok},
            "/person": {"post": ok},
            "/content-type": {"get": ok},
            "/people": {"get": ok},
            "/message": {"put": ok, "get": ok},
            "/stderr": {"get": ok},
            "/execute_result": {"get": ok},
            "/nocontent": {"get": ok},
        },
    }


# -- api_intro.ipynb: the contact list ---------------------------------------------------------


def test_contact_list_walkthrough(contacts: RuntimeProcess) -> None:
    """The api_intro notebook's own client session, step by step (its client cell, guarded by
    ``KERNEL_GATEWAY``, did not run at start-up: the runtime would not have started)."""
    url = contacts.url + "/contacts"
    created = requests.post(
        url, json={"name": "Alice Adams", "phone": "919-555-6712", "address": "42 Wallaby Way"}
    )
    assert created.status_code == 200
    alice = created.json()["contact_id"]

    # A form-encoded update: form values arrive as lists, as Kernel Gateway passes them.
    updated = requests.put(f"{url}/{alice}", {"phone": "919-444-5601"})
    assert updated.status_code == 200
    assert updated.headers["Content-Type"] == "application/json"
    assert updated.json() == {
        "contact_id": {"name": "Alice Adams", "phone": ["919-444-5601"], "address": "42 Wallaby Way"}
    }

    requests.post(url, json={"name": "Bob Billiham", "phone": "860-555-1409"}).raise_for_status()
    requests.post(url, json={"name": "Cathy Caritgan", "phone": "512-555-6925"}).raise_for_status()
    hits = requests.get(url, params={"name": "billi"})
    assert hits.headers["Content-Type"] == "application/json"
    assert [c["name"] for c in hits.json().values()] == ["Bob Billiham"]

    deleted = requests.delete(f"{url}/{alice}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert requests.delete(f"{url}/{alice}").status_code == 404
    assert requests.put(f"{url}/{alice}", json={"phone": "1"}).status_code == 404
    assert sorted(c["name"] for c in requests.get(url).json().values()) == ["Bob Billiham", "Cathy Caritgan"]


# -- setting_response_metadata.ipynb: status and headers from ResponseInfo ----------------------


def test_person_with_content_negotiation_and_etag(person: RuntimeProcess) -> None:
    url = person.url + "/person/1"
    etag = hashlib.md5(b"1-Corey-26-Austin, TX").hexdigest()
    as_json = requests.get(url, headers={"Content-Type": "application/json"})
    assert as_json.status_code == 200
    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.headers["ETag"] == etag
    assert as_json.json() == {"id": 1, "name": "Corey", "age": 26, "location": "Austin, TX"}

    as_html = requests.get(url)
    assert as_html.headers["Content-Type"] == "text/html"
    assert as_html.text == "<p>Corey is 26 years old and lives in Austin, TX.</p>\n"

    not_modified = requests.get(url, headers={"Content-Type": "application/json", "If-None-Match": etag})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["ETag"] == etag


# -- endpoint_ordering.ipynb: which route answers ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/test/test/test/test", "route 1"),  # constant routes first
        ("/test/test/test/x", "route 2"),  # then the deepest first path parameter
        ("/test/test/x", "route 3b"),
        ("/t/t/x", "route 3"),
        ("/test/x", "route 4b"),
        ("/t/x", "route 4"),
        ("/x", "route 5"),
        ("/hello/world", "hello name"),  # /hello/:name (param at depth 1) beats /:greeting/world
        ("/hi/world", "greeting first"),
    ],
)
def test_route_precedence(ordering: RuntimeProcess, path: str, answer: str) -> None:
    assert requests.get(ordering.url + path).text == answer + "\n"


def test_notebook_routes_come_before_the_generated_documents(ordering: RuntimeProcess) -> None:
    """Kernel Gateway registers the swagger handler after the notebook's routes; our
    ``/openapi.json`` likewise never shadows a route the notebook defines."""
    assert requests.get(ordering.url + "/_api/spec/swagger.json").json()["swagger"] == "2.0"
    assert requests.get(ordering.url + "/openapi.json").text == "route 5\n"  # /:id answers it
