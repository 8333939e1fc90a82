#!/usr/bin/env bash
# Make a Docker engine answer and print the DOCKER_HOST value to use (last line of stdout).
#
#   host=$(scripts/ensure-docker.sh | tail -n1) && export DOCKER_HOST="$host"
#   scripts/ensure-docker.sh --stop    # stop the dockerd this script started
#
# 1. If `docker info` already answers ($DOCKER_HOST or the current context / default
#    socket), print that endpoint.
# 2. Else, if the Floyd dockerd (socket unix:///run/floyd-docker.sock, pidfile
#    /run/floyd-docker.pid) is running, wait for it and print its socket.
# 3. Else, as root with dockerd installed, start
#      dockerd --data-root /var/lib/floyd-docker --exec-root /run/floyd-docker
#              --host unix:///run/floyd-docker.sock --pidfile /run/floyd-docker.pid
#    detached (setsid nohup, log in /var/log/floyd-dockerd.log), wait up to 60 s
#    (FLOYD_DOCKER_WAIT) for `docker info` and print unix:///run/floyd-docker.sock.
# Exits non-zero with a message on stderr when no engine can be had.
# The docker 28 client negotiates the API version down to dockerd 20.10 (API 1.41):
# no DOCKER_API_VERSION is needed.
set -euo pipefail

FLOYD_SOCK_PATH=${FLOYD_DOCKER_SOCK:-/run/floyd-docker.sock}
FLOYD_HOST="unix://$FLOYD_SOCK_PATH"
PIDFILE=${FLOYD_DOCKER_PIDFILE:-/run/floyd-docker.pid}
DATA_ROOT=${FLOYD_DOCKER_DATA_ROOT:-/var/lib/floyd-docker}
EXEC_ROOT=${FLOYD_DOCKER_EXEC_ROOT:-/run/floyd-docker}
LOG=${FLOYD_DOCKER_LOG:-/var/log/floyd-dockerd.log}
WAIT=${FLOYD_DOCKER_WAIT:-60}

err() { echo "ensure-docker: $*" >&2; }

if ! command -v docker >/dev/null 2>&1; then
    err "the docker CLI is not installed (as root: scripts/ensure-system.sh docker)"
    exit 1
fi

answers() { # answers [HOST]: does a Docker engine answer there?
    if [ -n "${1:-}" ]; then
        DOCKER_HOST="$1" timeout 15 docker info >/dev/null 2>&1
    else
        timeout 15 docker info >/dev/null 2>&1
    fi
}

floyd_pid() { # print the pid of the Floyd dockerd when it runs
    local pid
    [ -r "$PIDFILE" ] || return 1
    pid=$(tr -dc 0-9 <"$PIDFILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || return 1
    echo "$pid"
}

if [ "${1:-}" = --stop ]; then
    if pid=$(floyd_pid); then
        kill "$pid"
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || { err "stopped dockerd (pid $pid)"; exit 0; }
            sleep 1
        done
        err "dockerd (pid $pid) did not stop within 30 s"
        exit 1
    fi
    err "no Floyd dockerd running"
    exit 0
elif [ -n "${1:-}" ]; then
    sed -n '2,18s/^# \{0,1\}//p' "$0" >&2
    [ "$1" = -h ] || [ "$1" = --help ] && exit 0
    exit 2
fi

# 1. an engine that already answers
if answers; then
    if [ -n "${DOCKER_HOST:-}" ]; then
        echo "$DOCKER_HOST"
    else
        host=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)
        echo "${host:-unix:///var/run/docker.sock}"
    fi
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "$FLOYD_HOST" ]; then
    err "DOCKER_HOST=$DOCKER_HOST does not answer; trying the Floyd dockerd"
fi

wait_for() { # wait_for PID: until the Floyd socket answers or dockerd exits
    local pid=$1 i
    for ((i = 0; i < WAIT; i++)); do
        answers "$FLOYD_HOST" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 1
    done
    answers "$FLOYD_HOST"
}

# 2. the Floyd dockerd, already started
if answers "$FLOYD_HOST"; then
    echo "$FLOYD_HOST"
    exit 0
fi
if pid=$(floyd_pid); then
    err "reusing dockerd (pid $pid), waiting for it to answer"
    if wait_for "$pid"; then
        echo "$FLOYD_HOST"
        exit 0
    fi
    err "dockerd (pid $pid) does not answer on $FLOYD_HOST; see $LOG"
    exit 1
fi

# 3. start one
if [ "$(id -u)" -ne 0 ]; then
    err "no Docker engine answers and only root can start one."
    err "  start Docker (e.g. sudo scripts/ensure-docker.sh) or set DOCKER_HOST"
    exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
    err "no Docker engine answers and dockerd is not installed (scripts/ensure-system.sh docker)"
    exit 1
fi

rm -f "$PIDFILE"
# a socket file left by a dead dockerd is replaced by dockerd itself
mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$(dirname "$LOG")" "$(dirname "$FLOYD_SOCK_PATH")"
echo "=== $(date -Is) ensure-docker: starting dockerd" >>"$LOG"
setsid nohup dockerd \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --host "$FLOYD_HOST" \
    --pidfile "$PIDFILE" \
    </dev/null >>"$LOG" 2>&1 &
started=$!
err "started dockerd (log: $LOG), waiting up to ${WAIT} s"

pid=$started
for _ in 1 2 3 4 5; do # dockerd writes its pidfile itself
    if p=$(floyd_pid); then pid=$p; break; fi
    kill -0 "$started" 2>/dev/null || break
    sleep 0.2
done
if wait_for "$pid"; then
    echo "$FLOYD_HOST"
    exit 0
fi
if kill -0 "$pid" 2>/dev/null; then
    err "dockerd (pid $pid) did not answer within ${WAIT} s; it is left running. Last log lines:"
else
    err "dockerd exited. Last log lines:"
fi
tail -n 20 "$LOG" >&2
exit 1
