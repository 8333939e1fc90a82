"""Serving: endpoints as versioned, key-protected, load-balanced REST services."""
