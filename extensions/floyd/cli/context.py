"""What every command needs: a client and the name of the person using it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from floyd.client.config import load_config
from floyd.client.refs import DataRef, parse_data_ref

if TYPE_CHECKING:
    from floyd.client.http import FloydClient


class Session:
    def __init__(self) -> None:
        self.config = load_config()
        self._client: FloydClient | None = None
        self._me: str | None = None

    @property
    def client(self) -> FloydClient:
        """Made on first use: the HTTP client is the costliest import of a short command."""
        if self._client is None:
            from floyd.client.http import FloydClient

            self._client = FloydClient.from_config(self.config)
        return self._client

    @property
    def me(self) -> str:
        if self._me is None:
            self._me = self.config.username or self.client.whoami()["name"]
        return self._me

    def data_ref(self, text: str) -> DataRef:
        if "/" in text.split(":", 1)[0]:
            return parse_data_ref(text, "")
        return parse_data_ref(text, self.me)
