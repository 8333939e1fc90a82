#!/usr/bin/env bash
# Build the registry-free base image floyd/base:bookworm (Debian bookworm minbase with
# python3, python3-venv, python3-pip and ca-certificates) with debootstrap + docker import.
#
#   images/bootstrap.sh [--force] [--tag NAME] [--cache-dir DIR] [--mirror URL]
#
#   --force       rebuild: run debootstrap again (downloaded .debs are reused) and
#                 re-import, even when the image exists
#   --tag         image name (default floyd/base:bookworm)
#   --cache-dir   cache (default /var/cache/floyd-debootstrap, or $FLOYD_DEBOOTSTRAP_CACHE):
#                 debs/ holds the downloaded packages, rootfs-*.tar the finished root
#                 filesystem, so a rerun after the image was removed only imports (~3 s)
#   --mirror      Debian mirror (default: the one /etc/apt/sources.list(.d) uses, else
#                 http://deb.debian.org/debian; or $FLOYD_DEBIAN_MIRROR)
#
# Needs root (debootstrap) and a Docker engine: it uses $DOCKER_HOST like the docker CLI
# (scripts/ensure-docker.sh prints one). Skips when the image already exists.
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
INCLUDE=python3,python3-venv,python3-pip,ca-certificates
TAG=floyd/base:bookworm
CACHE=${FLOYD_DEBOOTSTRAP_CACHE:-/var/cache/floyd-debootstrap}
MIRROR=${FLOYD_DEBIAN_MIRROR:-}
FORCE=false

say() { echo "bootstrap: $*"; }
die() { echo "bootstrap: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --force) FORCE=true ;;
        --tag) TAG=${2:?--tag needs a value}; shift ;;
        --tag=*) TAG=${1#*=} ;;
        --cache-dir) CACHE=${2:?--cache-dir needs a value}; shift ;;
        --cache-dir=*) CACHE=${1#*=} ;;
        --mirror) MIRROR=${2:?--mirror needs a value}; shift ;;
        --mirror=*) MIRROR=${1#*=} ;;
        -h|--help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed"
if ! timeout 15 docker info >/dev/null 2>&1; then
    die "no Docker engine answers${DOCKER_HOST:+ at DOCKER_HOST=$DOCKER_HOST}; run: export DOCKER_HOST=\$(scripts/ensure-docker.sh | tail -n1)"
fi

old_id=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
if ! $FORCE && [ -n "$old_id" ]; then
    say "$TAG exists ($(docker image inspect -f '{{.Id}}' "$TAG" | cut -c1-19)); use --force to rebuild"
    exit 0
fi

# The Debian mirror the host's apt uses (deb822 .sources or one-line .list), not -security.
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk '
            /^[ \t]*$/ { if (uri != "" && suites ~ /(^| )bookworm( |$)/) { print uri; done = 1; exit } uri = ""; suites = "" }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { $1 = ""; suites = $0 " " }
            END { if (!done && uri != "" && suites ~ /(^| )bookworm( |$)/) print uri }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2 }'
    done
}
if [ -z "$MIRROR" ]; then
    MIRROR=$(host_mirror 2>/dev/null | grep -v -- '-security' | grep -E '^(https?|file)://' | head -n1 || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

key=$(printf '%s|%s|%s|%s|%s' "$SUITE" "$VARIANT" "$INCLUDE" "$MIRROR" "$(uname -m)" | sha256sum | cut -c1-12)
mkdir -p "$CACHE/debs"
CACHE=$(cd "$CACHE" && pwd) # debootstrap --cache-dir wants an absolute path
ROOTFS_TAR="$CACHE/rootfs-$SUITE-$key.tar"

if $FORCE || [ ! -s "$ROOTFS_TAR" ]; then
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (scripts/ensure-system.sh debootstrap)"
    work=$(mktemp -d "$CACHE/work.XXXXXX")
    cleanup() {
        # debootstrap mounts proc/sys inside the target; never delete through a mount
        local m
        for m in $(awk -v d="$work/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
            umount -l "$m" 2>/dev/null || true
        done
        rm -rf --one-file-system "$work"
    }
    trap cleanup EXIT
    say "debootstrap $SUITE ($VARIANT, +$INCLUDE) from $MIRROR ..."
    t0=$(date +%s)
    if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" --cache-dir="$CACHE/debs" \
        "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        [ -f "$work/root/debootstrap/debootstrap.log" ] && tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    t1=$(date +%s)
    say "debootstrap done in $((t1 - t0)) s"
    # slim down: package lists and cached .debs are not needed in the image
    rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/archives/"*.deb \
        "$work/root/var/log/"*.log "$work/root/debootstrap"
    printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$work/root/etc/apt/sources.list"
    tar -C "$work/root" --numeric-owner --xattrs \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -cf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    say "root filesystem cached in $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
else
    say "using cached root filesystem $ROOTFS_TAR"
fi

t0=$(date +%s)
docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.floyd.base=$SUITE-$VARIANT org.floyd.mirror=$MIRROR" \
    --message "debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE" \
    - "$TAG" <"$ROOTFS_TAR" >/dev/null
t1=$(date +%s)
new_id=$(docker image inspect -f '{{.Id}}' "$TAG")
say "imported $TAG in $((t1 - t0)) s (${new_id:0:19})"
# after --force: drop the previous image when nothing else names or uses it
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ] &&
    [ "$(docker image inspect -f '{{len .RepoTags}}' "$old_id" 2>/dev/null)" = 0 ]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
fi
