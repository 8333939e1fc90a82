"""FloydAuthenticator: NativeAuthenticator with a first-run admin whose password is generated.

Further users sign up at /hub/signup and an admin approves them at /hub/authorize.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from jupyterhub.apihandlers.users import UserTokenListAPIHandler
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from tornado import web
from traitlets import Unicode

from jobs_bridge.auth.backoff import Backoff, client_ip, lockout_message, peer_address


def ensure_password_file(path: Path) -> str:
    """Return the admin password stored at ``path``, creating it (mode 0600) on first run."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


class FloydLoginHandler(NativeLoginHandler):
    """NativeAuthenticator 1.3's login form times itself with ``self.statsd``, which
    JupyterHub 6 removed; this is the same POST without the timer."""

    async def post(self) -> None:
        data = {arg: self.get_argument(arg, strip=False) for arg in self.request.arguments}
        username = data.get("username", "")
        wait, message = self.authenticator.lockout(self, username)
        if wait:  # refused before the password is even looked at
            self.set_status(429)
            self.set_header("Retry-After", str(wait))
            self.finish(await self._render(login_error=message, username=username))
            return
        user = await self.login_user(data)
        self.authenticator.record_login(self, username, bool(user))
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        error = "Invalid username or password."
        info = self.authenticator.get_user(username)
        if info is not None and info.is_valid_password(data.get("password", "")) and not info.is_authorized:
            error = f"User {username} has not been authorized by an administrator yet."
        html = await self._render(login_error=error, username=username)
        self.finish(html)


class TooManyAttempts(web.HTTPError):
    """429 with ``Retry-After``: JupyterHub's ``write_error`` sends an error's ``headers``."""

    def __init__(self, wait: int, message: str) -> None:
        super().__init__(429, message.replace("%", "%%"))
        self.headers = {"Retry-After": str(wait)}


class FloydTokenListHandler(UserTokenListAPIHandler):
    """``POST /hub/api/users/<name>/tokens`` with ``{"auth": {username, password}}`` (``floyd login``).

    JupyterHub looks the authenticated name up in its user table, where a user approved by an
    admin appears only at their first browser login; until then the CLI got 403. Like a browser
    login, a successful authentication here creates the hub user first (``auth_to_user``).
    Failed passwords count towards the same back-off as the login page's.
    """

    async def post(self, user_name: str) -> None:
        if self.current_user is None:  # a password in the body, not a token
            body = self.get_json_body()
            auth = body.get("auth") if isinstance(body, dict) else None
            username = auth.get("username") if isinstance(auth, dict) else None
            wait, message = self.authenticator.lockout(self, username if isinstance(username, str) else "")
            if wait:
                raise TooManyAttempts(wait, message)
        await super().post(user_name)

    async def authenticate(self, data: Any) -> Any:
        authenticated = await super().authenticate(data)
        username = data.get("username") if isinstance(data, dict) else None
        if isinstance(username, str):
            self.authenticator.record_login(self, username, bool(authenticated))
        if authenticated:
            await self.auth_to_user(authenticated)
        return authenticated


class LoginBackoff(Backoff):
    """``c.LoginBackoff``: failed sign-ins (the login page and ``floyd login``), per client address
    and per user name; the settings of jobs_bridge.auth.backoff.Backoff."""


class FloydAuthenticator(NativeAuthenticator):
    admin_password_file = Unicode(
        "", help="File holding the first admin's password (created with mode 0600 on first start). "
        "The admin account is created with it if it does not exist yet; change the password at /hub/change-password."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.by_address = LoginBackoff(parent=self)
        self.by_user = LoginBackoff(parent=self)

    def lockout(self, handler: web.RequestHandler, username: str) -> tuple[int, str]:
        """Seconds a sign-in from this client, or as this user, must wait (0: go ahead), and why."""
        address = self.client_address(handler)
        user = self.normalize_username(username) if username else ""
        by_address = self.by_address.retry_after(address)
        by_user = self.by_user.retry_after(user) if user else 0
        wait = max(by_address, by_user)
        if not wait:
            return 0, ""
        reasons = ([f"your address {address}"] if by_address else []) + ([f"user {user}"] if by_user else [])
        self.log.warning("Sign-in refused for %d s (%s)", wait, ", ".join(reasons))
        return wait, lockout_message("sign-ins", wait, reasons)

    def record_login(self, handler: web.RequestHandler, username: str, ok: bool) -> None:
        """A success forgets the user's failures (not the address's: one's own account must not
        reset the count of guesses at others')."""
        user = self.normalize_username(username)
        if ok:
            self.by_user.succeeded(user)
            return
        self.by_address.failed(self.client_address(handler))
        if user:
            self.by_user.failed(user)

    def client_address(self, handler: web.RequestHandler) -> str:
        return client_ip(handler.request.headers, peer_address(handler.request), self.by_address.forwarded_hops)

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        """NativeAuthenticator's pages with our login form, and the token route ahead of JupyterHub's."""
        native = [(path, FloydLoginHandler if path == r"/login" else handler)
                  for path, handler in super().get_handlers(app)]
        return [*native, (r"/api/users/([^/]+)/tokens", FloydTokenListHandler)]

    def add_user(self, user: Any) -> Any:
        if user.name in self.admin_users and self.admin_password_file and not self.user_exists(user.name):
            password = ensure_password_file(Path(self.admin_password_file))
            info = self.create_user(user.name, password)
            if info is not None:
                info.is_authorized = True
                self.db.commit()
                self.log.info("Created the first admin account %r", user.name)
        return super().add_user(user)
