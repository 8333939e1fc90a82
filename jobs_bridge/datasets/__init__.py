"""Versioned, content-addressed datasets: records, uploads and commits."""
