"""Job tokens: ``fjt_…`` secrets a running job uses to report on itself.

Only their SHA-256 is stored: a token has 192 random bits, so a plain hash (not a slow
password hash) is enough, and looking one up is a single indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

JOB_TOKEN_PREFIX = "fjt_"


def new_token() -> str:
    return JOB_TOKEN_PREFIX + secrets.token_urlsafe(24)


def is_job_token(token: str) -> bool:
    return token.startswith(JOB_TOKEN_PREFIX)


def token_hash(token: str) -> str:
    """What the database keeps of a job token (jobs.token_hash)."""
    return hashlib.sha256(token.encode()).hexdigest()
