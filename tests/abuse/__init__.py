"""Abuse limits: back-off on failed credentials, size and count limits, SSE follower caps."""
