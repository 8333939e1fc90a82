"""Issue 17, "no 5xx from any input": refusals raised anywhere in a handler keep their status,
numbers out of range are 4xx, 405 names the allowed methods, flags are JSON booleans only."""

from __future__ import annotations

from tests.support.platform import User


def test_options_for_someone_else_is_403(alice: User, bob: User) -> None:
    """The refusal comes from acting_as() in the handler, before any manager call."""
    r = alice.api("GET", "workspaces/options", params={"user": bob.name})
    assert r.status_code == 403, r.text
    assert r.json() == {"status": 403, "message": "You can only prepare your own workspaces."}
    assert alice.api("GET", "workspaces/options", params={"user": alice.name}).status_code == 200
