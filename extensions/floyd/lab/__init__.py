"""Code that runs in JupyterLab (a workspace's single-user server and its kernels): the server
extension, the ``%floyd_run`` magics, the job monitor widget and ``floyd.Job``.

It reaches the platform through :mod:`floyd.client`, the same request model and uploader as
the CLI, so a job started from the Lab is the job ``floyd run`` would submit."""
