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
from traitlets import Unicode


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
        user = await self.login_user(data)
        if user:
            self._jupyterhub_user = user
            self.redirect(self.get_next_url(user))
            return
        error = "Invalid username or password."
        username = data.get("username", "")
        info = self.authenticator.get_user(username)
        if info is not None and info.is_valid_password(data.get("password", "")) and not info.is_authorized:
            error = f"User {username} has not been authorized by an administrator yet."
        html = await self._render(login_error=error, username=username)
        self.finish(html)


class FloydTokenListHandler(UserTokenListAPIHandler):
    """``POST /hub/api/users/<name>/tokens`` with ``{"auth": {username, password}}`` (``floyd login``).

    JupyterHub looks the authenticated name up in its user table, where a user approved by an
    admin appears only at their first browser login; until then the CLI got 403. Like a browser
    login, a successful authentication here creates the hub user first (``auth_to_user``).
    """

    async def authenticate(self, data: Any) -> Any:
        authenticated = await super().authenticate(data)
        if authenticated:
            await self.auth_to_user(authenticated)
        return authenticated


class FloydAuthenticator(NativeAuthenticator):
    admin_password_file = Unicode(
        "", help="File holding the first admin's password (created with mode 0600 on first start). "
        "The admin account is created with it if it does not exist yet; change the password at /hub/change-password."
    ).tag(config=True)

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
