"""Failed sign-ins are slowed: per client address and per user, at the login page and at the
token route ``floyd login`` uses, with 429 + Retry-After before the password is checked.

The hub's own port (behind the proxy) is called directly with an X-Forwarded-For header, as
configurable-http-proxy calls it, so each test has client addresses of its own; the last test
goes through the proxy, where a client's own header cannot change the address counted.
"""

from __future__ import annotations

import re

import requests

from tests.support.platform import Platform


def hub(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.env['FLOYD_HUB_API_PORT']}/hub/"


def sign_up(platform: Platform, name: str, password: str) -> None:
    s = requests.Session()
    s.headers["X-Forwarded-For"] = "10.9.0.1"
    html = s.get(hub(platform) + "signup", timeout=30).text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert xsrf, html[:500]
    r = s.post(hub(platform) + "signup", timeout=30, data={
        "username": name, "signup_password": password, "signup_password_confirmation": password,
        "_xsrf": xsrf.group(1)})
    assert r.status_code == 200, r.text[-2000:]


def form_login(base: str, name: str, password: str, address: str) -> requests.Response:
    s = requests.Session()
    s.headers["X-Forwarded-For"] = address
    html = s.get(base + "login", timeout=30).text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', html)
    assert xsrf, html[:500]
    return s.post(base + "login", data={"username": name, "password": password, "_xsrf": xsrf.group(1)},
                  timeout=30, allow_redirects=False)


def token_login(base: str, name: str, password: str, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{base}api/users/{name}/tokens", headers=headers, timeout=30,
                         json={"auth": {"username": name, "password": password}, "note": "abuse test"})


def assert_locked(r: requests.Response, most: int) -> None:
    assert r.status_code == 429, r.text[-1000:]
    assert 1 <= int(r.headers["Retry-After"]) <= most
    assert "try again in" in r.text


def test_per_user_backoff_and_reset_on_success(platform: Platform) -> None:
    base = hub(platform)
    sign_up(platform, "victim", "victim-pw-123456")
    # Two failures (login page, then token route), each from another address.
    assert form_login(base, "victim", "wrong", "10.0.1.1").status_code == 200
    assert token_login(base, "victim", "wrong", {"X-Forwarded-For": "10.0.1.2"}).status_code == 403
    # A success resets the user's count: two more failures do not lock.
    assert token_login(base, "victim", "victim-pw-123456", {"X-Forwarded-For": "10.0.1.3"}).status_code == 201
    assert token_login(base, "victim", "wrong", {"X-Forwarded-For": "10.0.1.4"}).status_code == 403
    assert form_login(base, "victim", "wrong", "10.0.1.5").status_code == 200
    assert form_login(base, "victim", "victim-pw-123456", "10.0.1.6").status_code == 302
    for address in ("10.0.1.7", "10.0.1.8", "10.0.1.9"):
        assert token_login(base, "victim", "wrong", {"X-Forwarded-For": address}).status_code == 403
    # Locked: even the right password is refused, from any address, at both doors.
    r = token_login(base, "victim", "victim-pw-123456", {"X-Forwarded-For": "10.0.1.10"})
    assert_locked(r, 30)
    assert r.json()["status"] == 429 and "user victim" in r.json()["message"]
    page = form_login(base, "victim", "victim-pw-123456", "10.0.1.11")
    assert_locked(page, 30)
    assert "user victim" in page.text
    # Another user from one of those addresses is not affected.
    sign_up(platform, "bystander", "bystander-pw-123456")
    ok = token_login(base, "bystander", "bystander-pw-123456", {"X-Forwarded-For": "10.0.1.9"})
    assert ok.status_code == 201


def test_per_address_backoff(platform: Platform) -> None:
    base = hub(platform)
    sign_up(platform, "carol", "carol-pw-123456")
    for name in ("guess1", "guess2", "guess3"):  # one address guessing at several accounts
        assert token_login(base, name, "pw", {"X-Forwarded-For": "10.0.2.1"}).status_code == 403
    r = token_login(base, "carol", "carol-pw-123456", {"X-Forwarded-For": "10.0.2.1"})
    assert_locked(r, 30)
    assert "10.0.2.1" in r.json()["message"]
    assert_locked(form_login(base, "carol", "carol-pw-123456", "10.0.2.1"), 30)
    # carol herself, from her own address, signs in.
    assert token_login(base, "carol", "carol-pw-123456", {"X-Forwarded-For": "10.0.2.2"}).status_code == 201


def test_a_client_cannot_choose_its_address(platform: Platform) -> None:
    """Through the proxy: X-Forwarded-For and X-Real-Ip sent by the client do not count."""
    for i in range(3):
        spoof = {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-Ip": f"198.51.100.{i}"}
        assert token_login(platform.url + "hub/", f"spoof{i}", "pw", spoof).status_code == 403
    r = token_login(platform.url + "hub/", "spoof9", "pw", {"X-Forwarded-For": "203.0.113.99",
                                                             "X-Real-Ip": "198.51.100.99"})
    assert_locked(r, 30)
    message = r.json()["message"]
    assert "203.0.113" not in message and "198.51.100" not in message
    # What `floyd login` shows a person.
    out = platform.cli(None, "login", platform.url, "-u", "spoof9", "--password-stdin", input="pw\n", check=False)
    assert out.returncode != 0 and "try again in" in out.stdout + out.stderr
