#!/bin/sh
# The hub container's command: what a start in a fresh PID namespace on the host's network needs,
# then floyd-up (which takes FLOYD_ROOT and FLOYD_HUB_PORT from the environment, writes the
# admin's password file on the first start and forwards SIGTERM to JupyterHub).
set -eu
root="${FLOYD_ROOT:-/srv/floyd/var}"
# The pid files a previous start left in the root name processes that are gone, and a pid they
# hold may belong to a new process here (JupyterHub would signal "the old proxy").
rm -f "$root"/*.pid
# JupyterHub checks a proxy bound to 0.0.0.0 at this machine's host name; on the host network
# the container has a copy of the host's /etc/hosts, which may not name it.
name=$(hostname)
getent hosts "$name" >/dev/null 2>&1 || echo "127.0.0.1 $name" >>/etc/hosts
exec floyd-up "$@"
