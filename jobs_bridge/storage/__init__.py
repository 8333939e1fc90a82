"""Storage under FLOYD_ROOT: the one containment check, the blob store, materialization."""
