"""FloydAuthenticator: NativeAuthenticator with a first-run admin whose password is generated.

Further users sign up at /hub/signup and an admin approves them at /hub/authorize.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from nativeauthenticator import NativeAuthenticator
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


class FloydAuthenticator(NativeAuthenticator):
    admin_password_file = Unicode(
        "", help="File holding the first admin's password (created with mode 0600 on first start). "
        "The admin account is created with it if it does not exist yet; change the password at /hub/change-password."
    ).tag(config=True)

    def add_user(self, user):  # type: ignore[no-untyped-def]
        if user.name in self.admin_users and self.admin_password_file and not self.user_exists(user.name):
            password = ensure_password_file(Path(self.admin_password_file))
            info = self.create_user(user.name, password)
            if info is not None:
                info.is_authorized = True
                self.db.commit()
                self.log.info("Created the first admin account %r", user.name)
        return super().add_user(user)
