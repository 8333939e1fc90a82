"""Lineage: which data, code and runs made an object, and what was made from it."""
