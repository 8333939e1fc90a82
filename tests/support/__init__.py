"""Helpers shared by the tests (and the benchmarks): import them from here, never from a conftest.

- ``platform``: a real platform (JupyterHub + proxy + bridge) started the way ``make up`` starts it;
  ``Platform``, ``User``, ``write_tree``, ``free_port``, ``REPO``, ``VENV_BIN``, ``TEST_BRIDGE_CONFIG``.
- ``docker``: the engine client and the environment image fixtures (``docker_client``, ``workspace_image``).
- ``postgres``: a throwaway PostgreSQL server (``PostgresServer``; ``halt``/``resume`` for an outage).
- ``disk``: a small loop-mounted ext4 filesystem a test can fill (``SmallDisk``).
- ``routes``: the bridge's route table with each handler's HTTP methods (``route_methods``).
- ``browser``: Playwright on Debian's chromium (``browser``, ``page`` fixtures; ``login``,
  ``dismiss_news``, ``stop_workspace``; ``OUTPUT`` for screenshots).
- ``jobs``: upload code and submit a job, wait for its state (``client_for``, ``submit``, ``wait_state``).
- ``workspaces``: spawn, wait for, and stop a workspace through the Hub API (``workspace_filter``,
  ``spawn``, ``wait_ready``, ``stop``).
- ``serving``: deploy an endpoint version, wait for it, call it (``deploy``, ``deploy_ready``, ``call``…).
- ``traffic``: continuous requests to an endpoint from a thread, every answer timed (``Traffic``, ``Answer``).
- ``runtime``: real ``python -m floyd.container.serving`` processes (``RuntimeProcess``, ``start``,
  ``write``, ``write_notebook``, ``NOTEBOOKS``).
- ``fuzz``: schemathesis's CLI against a platform (``run_schemathesis``, ``BOUNDED``/``LONG`` profiles,
  ``FuzzReport``, ``release_gpus``); ``python -m tests.support.fuzz`` is ``make fuzz``.
- ``lab``: code inside a workspace: ``Workspace``, ``make_workspace``, a real ``JupyterServer``
  (``jupyter_server`` fixture), ``sse_events``, and the workspace code ``TRAIN`` and ``APP``.
- ``load``: many users at once (jobs, dataset uploads, endpoint traffic, a timed API GET) on a
  started platform (``Profile``, ``FULL``, ``QUICK``, ``LoadRun``, ``LoadResult``); for
  benchmarks/load.py and tests/load/.
- ``loadgen``: the traffic it is made of (``ErrorTally``, ``Sampler``, ``open_loop``, ``percentile``).
- ``fairshare``: the queue's fair share and limits replayed from job records (``check``, ``Report``).
"""
