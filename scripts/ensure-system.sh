#!/usr/bin/env bash
# Make sure the system packages Floyd Workspaces needs are present.
#
#   scripts/ensure-system.sh [COMPONENT...]
#
# COMPONENT is one of: docker chromium debootstrap postgresql configurable-http-proxy compose haproxy
# wrk (default: all of them). python3 (>= 3.10), node and npm are always checked.
#
# Idempotent and fast when everything is there: it only looks (command -v, dpkg -s).
# As root it installs what is missing: one `apt-get update` + `apt-get install` for the
# Debian packages (docker.io, chromium, debootstrap, postgresql, haproxy, wrk, nodejs/npm, docker-compose), then
# `npm install -g configurable-http-proxy`. It prints one line per thing installed.
# Not as root it prints what is missing and how to install it, and exits 0 unless a
# hard requirement (python3, node, npm) is missing.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
ALL=(docker chromium debootstrap postgresql configurable-http-proxy compose haproxy wrk)

say() { echo "ensure-system: $*"; }
warn() { echo "ensure-system: $*" >&2; }

if [ $# -eq 0 ]; then
    set -- "${ALL[@]}"
fi
wanted=()
for c in "$@"; do
    case "$c" in
        docker|docker.io) wanted+=(docker) ;;
        chromium) wanted+=(chromium) ;;
        debootstrap) wanted+=(debootstrap) ;;
        postgresql|postgres) wanted+=(postgresql) ;;
        configurable-http-proxy|chp) wanted+=(configurable-http-proxy) ;;
        compose|docker-compose) wanted+=(compose) ;;
        haproxy) wanted+=(haproxy) ;;  # the endpoint data plane (jobs_bridge/serving/dataplane)
        wrk) wanted+=(wrk) ;;  # the load generator of the benchmarks' c=32 rows (benchmarks/loadgen.py)
        -h|--help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) warn "unknown component '$c' (known: ${ALL[*]})"; exit 2 ;;
    esac
done

is_root=false
[ "$(id -u)" -eq 0 ] && is_root=true
have_apt=false
command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 && have_apt=true


have_postgres_server() {
    command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && return 0
    return 1
}

python_ok() {
    command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1
}

# --- what is missing -------------------------------------------------------------------
apt_pkgs=()     # Debian packages to install
hard_missing=() # things that stop us when we cannot install them

if ! python_ok; then
    if command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
        apt_pkgs+=(python3-venv)   # Debian's python3 without the venv module
    else
        apt_pkgs+=(python3 python3-venv)
    fi
    hard_missing+=("python3 (>= 3.10, with venv)")
fi
if ! command -v node >/dev/null 2>&1; then
    apt_pkgs+=(nodejs)
    hard_missing+=(node)
fi
if ! command -v npm >/dev/null 2>&1; then
    apt_pkgs+=(npm)
    hard_missing+=(npm)
fi

for c in "${wanted[@]}"; do
    case "$c" in
        docker)
            # docker.io brings dockerd and a client (a newer client on PATH is fine)
            { command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; } ||
                apt_pkgs+=(docker.io)
            ;;
        chromium)
            { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; } || apt_pkgs+=(chromium)
            ;;
        debootstrap)
            command -v debootstrap >/dev/null 2>&1 || apt_pkgs+=(debootstrap)
            ;;
        postgresql)
            have_postgres_server || apt_pkgs+=(postgresql)
            ;;
        compose)
            # Debian's docker-compose (1.29), unless compose v2 is a plugin of the docker CLI
            { command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; } ||
                apt_pkgs+=(docker-compose)
            ;;
        haproxy)
            command -v haproxy >/dev/null 2>&1 || apt_pkgs+=(haproxy)
            ;;
        wrk)
            command -v wrk >/dev/null 2>&1 || apt_pkgs+=(wrk)
            ;;
        configurable-http-proxy) ;; # handled after node/npm below
    esac
done

# de-duplicate, keep order
if [ ${#apt_pkgs[@]} -gt 0 ]; then
    mapfile -t apt_pkgs < <(printf '%s\n' "${apt_pkgs[@]}" | awk '!seen[$0]++')
fi

need_chp=false
for c in "${wanted[@]}"; do
    if [ "$c" = configurable-http-proxy ] && ! command -v configurable-http-proxy >/dev/null 2>&1; then
        need_chp=true
    fi
done

# --- not root (or no apt): report and go on -----------------------------------------------
if ! $is_root || ! $have_apt; then
    if [ ${#apt_pkgs[@]} -gt 0 ]; then
        if $have_apt; then
            warn "missing Debian packages: ${apt_pkgs[*]}"
            warn "  install them with: sudo apt-get update && sudo apt-get install -y ${apt_pkgs[*]}"
        else
            warn "missing (install with your package manager): ${apt_pkgs[*]}"
        fi
    fi
    if $need_chp; then
        warn "missing: configurable-http-proxy"
        warn "  install it with: sudo npm install -g configurable-http-proxy"
    fi
    if [ ${#hard_missing[@]} -gt 0 ]; then
        warn "cannot continue without: ${hard_missing[*]}"
        exit 1
    fi
    exit 0
fi

# --- root: install -------------------------------------------------------------------------
log=$(mktemp /tmp/floyd-ensure-system.XXXXXX.log)
cleanup() {
    rm -f "$log"
    if [ -n "${temp_policy:-}" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

run_quiet() { # run a command, show its output only when it fails
    if ! "$@" >>"$log" 2>&1; then
        warn "failed: $*"
        tail -n 40 "$log" >&2
        exit 1
    fi
}

if [ ${#apt_pkgs[@]} -gt 0 ]; then
    # In a container (no systemd) do not let package scripts start services
    # (dockerd, a PostgreSQL cluster): scripts/ensure-docker.sh and the tests start
    # what they need themselves.
    temp_policy=
    if [ ! -e /usr/sbin/policy-rc.d ] && [ ! -d /run/systemd/system ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        temp_policy=1
    fi
    say "installing ${apt_pkgs[*]} (apt-get, quiet)..."
    run_quiet apt-get update -qq
    run_quiet apt-get install -y -qq -o Dpkg::Use-Pty=0 "${apt_pkgs[@]}"
    for p in "${apt_pkgs[@]}"; do
        v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')
        say "installed $p $v"
    done
fi

if ! python_ok; then
    warn "python3 (>= 3.10 with venv) still missing"
    exit 1
fi
for t in node npm; do
    command -v "$t" >/dev/null 2>&1 || { warn "$t still missing"; exit 1; }
done

if $need_chp; then
    run_quiet npm install -g --silent --no-fund --no-audit configurable-http-proxy
    if ! command -v configurable-http-proxy >/dev/null 2>&1; then
        warn "npm installed configurable-http-proxy but it is not on PATH (npm prefix: $(npm config get prefix))"
        exit 1
    fi
    say "installed configurable-http-proxy $(configurable-http-proxy --version 2>/dev/null || echo '?')"
fi
exit 0
