"""Pipelines: named steps of one project run as jobs in the order their inputs allow, each step
reused from an earlier run when nothing it depends on has changed."""
