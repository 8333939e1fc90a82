"""Limits on what one request, or one user's open streams, may cost the bridge.

Each is a trait of ``RequestLimits`` (``c.RequestLimits.…`` in floyd_bridge_config.py), answered
with 400/413/429 and a message that says what to do. The limits of bodies live with what reads
them: ``BridgeApp.max_json_bytes`` (JSON and endpoint bodies, ``bodylimit.BodyGuard``) and
``UploadManager.max_request_bytes`` / ``max_files_per_version`` (uploads and manifests).
"""

from __future__ import annotations

from collections import Counter

from traitlets import Integer
from traitlets.config import LoggingConfigurable

from jobs_bridge.errors import BadRequest, TooManyRequests


class RequestLimits(LoggingConfigurable):
    max_query_bytes = Integer(
        8192, help="Longest query string of an API or page request, in bytes; longer ones answer 400. "
        "(The proxy in front refuses request heads over 16 KiB on its own.)",
    ).tag(config=True)
    max_followers_per_user = Integer(
        16, help="Live log streams (`?follow=1`: job and endpoint logs, job pages) one user may hold open at "
        "once; one more answers 429 with Retry-After. 0 = no limit.",
    ).tag(config=True)
    max_followers = Integer(
        1000, help="Live log streams open at once on the whole bridge; one more answers 429 with Retry-After. "
        "0 = no limit.",
    ).tag(config=True)

    def check_query(self, query: str) -> None:
        size = len(query.encode("utf-8", "surrogateescape"))
        if size > self.max_query_bytes:
            raise BadRequest(f"The query string is {size} bytes; at most {self.max_query_bytes} are accepted. "
                             "Send long values in a JSON body instead.")


class Followers:
    """Open live log streams, counted per user (the event loop's only: no lock)."""

    RETRY_AFTER = 10  # seconds: a stream usually ends when its job or browser tab does

    def __init__(self, limits: RequestLimits) -> None:
        self.limits = limits
        self.by_user: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.by_user.values())

    def acquire(self, user: str) -> None:
        """Count one more stream of ``user``'s, or raise 429 if a cap is reached."""
        per_user, overall = self.limits.max_followers_per_user, self.limits.max_followers
        if per_user and self.by_user[user] >= per_user:
            raise TooManyRequests(
                f"{user} already follows {self.by_user[user]} live logs, the most one user may; close one "
                "(a browser tab with a job or endpoint page, a `floyd logs -f`) and try again.", self.RETRY_AFTER)
        if overall and self.total >= overall:
            raise TooManyRequests(f"The bridge already serves {overall} live logs, the most it allows; "
                                  "try again shortly, or read the log without following it.", self.RETRY_AFTER)
        self.by_user[user] += 1

    def release(self, user: str) -> None:
        self.by_user[user] -= 1
        if self.by_user[user] <= 0:
            del self.by_user[user]
