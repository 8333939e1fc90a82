"""Code that runs inside a Floyd container: the job entry point, the notebook runner, the
endpoint runtime (``python -m floyd.container.serving``) and ``log_metric``.

Nothing here talks to the platform's API: it only reads the ``/floyd`` tree and ``FLOYD_*``
variables that the container contract (``jobs_bridge/executors/contract.py``) promises."""
