"""A user who signed up and was approved logs in with the CLI before ever opening a browser."""

from __future__ import annotations

import re

import requests

from tests.support.platform import Platform


def form_session(platform: Platform, page: str) -> tuple[requests.Session, str]:
    """A browser-like session and the XSRF token of the form at hub/<page>."""
    s = requests.Session()
    html = s.get(platform.url + f"hub/{page}", timeout=30).text
    found = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert found, html[:500]
    return s, found.group(1)


def sign_up(platform: Platform, name: str, password: str) -> None:
    s, xsrf = form_session(platform, "signup")
    r = s.post(platform.url + "hub/signup", timeout=30, data={
        "username": name, "signup_password": password, "signup_password_confirmation": password, "_xsrf": xsrf})
    assert r.status_code == 200 and "sent to the admin" in r.text, r.text[-3000:]


def approve(platform: Platform, name: str) -> None:
    """The admin logs in and clicks Authorize on /hub/authorize."""
    s, xsrf = form_session(platform, "login")
    password = (platform.root / "admin-password").read_text().strip()
    r = s.post(platform.url + "hub/login", data={"username": "admin", "password": password, "_xsrf": xsrf},
               timeout=30, allow_redirects=False)
    assert r.status_code == 302, r.text
    assert name in s.get(platform.url + "hub/authorize", timeout=30).text
    r = s.get(platform.url + f"hub/authorize/{name}", timeout=30)
    assert r.status_code == 200, r.text[:500]


def cli_login(platform: Platform, name: str, password: str, check: bool = True):
    return platform.cli(None, "login", platform.url, "-u", name, "--password-stdin", input=password + "\n",
                        check=check)


def test_cli_login_right_after_approval(platform: Platform) -> None:
    sign_up(platform, "erin", "erin-secret-pw")
    # Not approved yet: refused, and the account does not exist in the hub yet.
    refused = cli_login(platform, "erin", "erin-secret-pw", check=False)
    assert refused.returncode != 0 and "not approved" in refused.stdout + refused.stderr
    assert platform.hub_api("GET", "users/erin").status_code == 404
    approve(platform, "erin")

    out = cli_login(platform, "erin", "erin-secret-pw").stdout
    assert "Logged in to" in out and "as erin" in out
    who = platform.cli(None, "whoami", "--json").stdout
    assert '"name": "erin"' in who
    user = platform.hub_api("GET", "users/erin").json()
    assert user["name"] == "erin" and user["admin"] is False
    # A wrong password is still refused, and so is an unknown user (who is not created).
    assert cli_login(platform, "erin", "wrong-password", check=False).returncode != 0
    assert cli_login(platform, "nobody-here", "whatever-pw", check=False).returncode != 0
    assert platform.hub_api("GET", "users/nobody-here").status_code == 404
