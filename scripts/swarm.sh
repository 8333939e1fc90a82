#!/usr/bin/env bash
# A 3-node Docker Swarm on this machine, each node an engine in a network namespace of its own
# (tests/support/swarm.py says how). As root:
#   scripts/swarm.sh up [IMAGE...]   # prints the manager's socket; IMAGEs are loaded on every node
#   scripts/swarm.sh down            # removes engines, namespaces, bridge, firewall rule, data
# FLOYD_SWARM_KEY (default 201) keeps two such swarms apart.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3
exec "$PY" -m tests.support.swarm "$@"
