"""The spawn form as a person submits it: bad choices come back as a message on the form."""

from __future__ import annotations

import re

import requests

from tests.support.platform import Platform


def logged_in_session(platform: Platform) -> requests.Session:
    s = requests.Session()
    page = s.get(platform.url + "hub/login", timeout=30).text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    password = (platform.root / "admin-password").read_text().strip()
    r = s.post(platform.url + "hub/login", data={"username": "admin", "password": password, "_xsrf": xsrf},
               timeout=30, allow_redirects=False)
    assert r.status_code == 302, r.text
    return s


def test_form_lists_choices_and_refuses_bad_ones(platform: Platform) -> None:
    admin = platform.admin
    admin.api("POST", "projects", json={"name": "form-proj"})
    s = logged_in_session(platform)
    page = s.get(platform.url + "hub/spawn", timeout=30).text
    assert 'id="floyd-form"' in page
    assert '<option value="cpu"' in page and '<option value="cuda"' in page
    assert '<option value="form-proj">' in page
    xsrf = s.cookies.get("_xsrf", path="/hub/")  # the page's script copies this cookie into the form
    cases = [
        ({"environment": "cpu", "gpus": "1"}, "does not allow GPUs"),
        ({"environment": "docker.io/evil:latest"}, "Unknown environment"),
        ({"environment": "cuda", "gpus": "7"}, "from 0 to"),
        ({"environment": "cpu", "project": "../../etc"}, "Invalid project name"),
        ({"environment": "cpu", "dataset": "bob-nobody/secret", "version:bob-nobody/secret": "1"}, "not found"),
    ]
    for form, words in cases:
        r = s.post(platform.url + "hub/spawn", data={**form, "_xsrf": xsrf}, timeout=60, allow_redirects=False)
        assert r.status_code in (400, 403, 404, 409, 422), (form, r.status_code)
        assert words in r.text, (form, r.text[-2000:])
        assert 'id="floyd-form"' in r.text  # the form is shown again, with the message
    assert "" not in platform.hub_api("GET", "users/admin").json().get("servers", {})
