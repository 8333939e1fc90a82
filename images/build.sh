#!/usr/bin/env bash
# Build a Floyd environment image from images/Dockerfile.
#
#   images/build.sh [--variant cpu|pytorch|tensorflow|cuda|hub|postgres] [--tag TAG] [--base IMAGE]
#                   [--framework none|pytorch|tensorflow] [--extra-pip 'PKG ...']
#                   [--build-arg NAME=VALUE]... [--force] [--no-cache] [--verbose]
#
#   --variant     cpu (default): JupyterLab, jupyterhub-singleuser, the Floyd client and
#                 numpy/pandas/scikit-learn/matplotlib, on floyd/base:bookworm -> floyd/cpu:latest
#                 pytorch / tensorflow: cpu + torch / tensorflow-cpu -> floyd/<variant>:latest
#                 cuda: BASE nvidia/cuda:12.4.1-runtime-ubuntu22.04, CUDA=1, torch
#                 -> floyd/cuda:latest (needs a registry: when its base is neither local nor
#                 pullable, the build is skipped with a message and exit 0; an explicit
#                 --base that cannot be had fails)
#                 hub / postgres: the images docker-compose.yml runs (images/hub/Dockerfile: JupyterHub,
#                 CHP and the bridge; images/postgres/Dockerfile: Debian's PostgreSQL), on
#                 floyd/base:bookworm -> floyd/hub:latest, floyd/postgres:latest (make compose-images)
#   --tag         image tag (default floyd/<variant>:latest)
#   --base        base image (default per variant; python:3.11-slim works where a registry is)
#   --framework   override the variant's framework
#   --extra-pip   more pip requirements (build arg EXTRA_PIP)
#   --build-arg   any other Dockerfile build arg (TORCH_INDEX_URL, APT_PACKAGES, ...)
#   --force       build even when TAG already carries the same org.floyd.source-hash
#   --no-cache    docker build --no-cache (fresh package versions)
#   --verbose     show the whole docker build output (default: its "Step" lines; the full
#                 log is kept in ${TMPDIR:-/tmp}/floyd-images/<tag>.log, e.g. floyd_cpu_latest.log)
#
# Steps: build the JupyterLab extension when extensions/labextension/labextension/ is missing or
# older than its sources (make labextension; npm ci + npm run build without a venv: the wheel
# ships it as data-files), build the Floyd wheel from this repository (pip wheel --no-deps, in a
# copy of the sources), assemble a temporary build context (Dockerfile, dist/*.whl, the host's CA bundle),
# make sure the base image exists (images/bootstrap.sh for floyd/base:bookworm, else docker
# pull), docker build --network host, read /opt/floyd/packages.txt from the image and add the
# labels org.floyd.packages (name==version,...), org.floyd.environment, org.floyd.framework,
# org.floyd.base and org.floyd.source-hash in a second one-line build.
# The source hash covers the Dockerfile, the build args, the base image id and the wheel's
# sources (pyproject.toml, jobs_bridge/, extensions/ with the built labextension/, hub_config/,
# jupyter-config/): when TAG carries the same hash the build is skipped. Uses $DOCKER_HOST like
# the docker CLI. Prints the tag on stdout (last line); messages and timings go to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HOST_CA=${FLOYD_HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
LOGDIR=${TMPDIR:-/tmp}/floyd-images
DEFAULT_BASE=floyd/base:bookworm
CUDA_BASE=nvidia/cuda:12.4.1-runtime-ubuntu22.04

VARIANT=cpu
TAG=
BASE=
FRAMEWORK=
EXTRA_PIP=
FORCE=false
NO_CACHE=false
VERBOSE=false
EXTRA_ARGS=()

T_START=$(date +%s.%N)
say() { echo "build: $*" >&2; }
die() { echo "build: $*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --variant) VARIANT=${2:?--variant needs a value}; shift ;;
        --variant=*) VARIANT=${1#*=} ;;
        --tag) TAG=${2:?--tag needs a value}; shift ;;
        --tag=*) TAG=${1#*=} ;;
        --base) BASE=${2:?--base needs a value}; shift ;;
        --base=*) BASE=${1#*=} ;;
        --framework) FRAMEWORK=${2:?--framework needs a value}; shift ;;
        --framework=*) FRAMEWORK=${1#*=} ;;
        --extra-pip) EXTRA_PIP=${2?--extra-pip needs a value}; shift ;;
        --extra-pip=*) EXTRA_PIP=${1#*=} ;;
        --build-arg) EXTRA_ARGS+=("${2:?--build-arg needs NAME=VALUE}"); shift ;;
        --build-arg=*) EXTRA_ARGS+=("${1#*=}") ;;
        --force) FORCE=true ;;
        --no-cache) NO_CACHE=true ;;
        --verbose) VERBOSE=true ;;
        -h|--help) sed -n '2,35s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

BASE_GIVEN=false
[ -n "$BASE" ] && BASE_GIVEN=true
CUDA=0
DOCKERFILE="$HERE/Dockerfile"
NEEDS_WHEEL=true
case "$VARIANT" in
    cpu) : "${FRAMEWORK:=none}" ;;
    hub) : "${FRAMEWORK:=none}"; DOCKERFILE="$HERE/hub/Dockerfile" ;;
    postgres) : "${FRAMEWORK:=none}"; DOCKERFILE="$HERE/postgres/Dockerfile"; NEEDS_WHEEL=false ;;
    pytorch) : "${FRAMEWORK:=pytorch}" ;;
    tensorflow) : "${FRAMEWORK:=tensorflow}" ;;
    cuda) : "${FRAMEWORK:=pytorch}" "${BASE:=$CUDA_BASE}"; CUDA=1 ;;
    *) die "unknown variant '$VARIANT' (cpu|pytorch|tensorflow|cuda|hub|postgres)" ;;
esac
case "$FRAMEWORK" in none|pytorch|tensorflow) ;; *) die "unknown framework '$FRAMEWORK'" ;; esac
: "${BASE:=$DEFAULT_BASE}" "${TAG:=floyd/$VARIANT:latest}"

command -v docker >/dev/null 2>&1 || die "the docker CLI is not installed"
# the legacy builder: dockerd 20.10 here, no buildx plugin; --network host works with it
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

# --- the base image ---------------------------------------------------------------------------
base_id=$(docker image inspect -f '{{.Id}}' "$BASE" 2>/dev/null) || base_id=
if [ -z "$base_id" ]; then
    timeout 15 docker info >/dev/null 2>&1 ||
        die "no Docker engine answers${DOCKER_HOST:+ at DOCKER_HOST=$DOCKER_HOST}; run: export DOCKER_HOST=\$(scripts/ensure-docker.sh | tail -n1)"
    if [ "$BASE" = "$DEFAULT_BASE" ]; then
        say "base $BASE missing: images/bootstrap.sh"
        bash "$HERE/bootstrap.sh" --tag "$BASE" >&2
    else
        say "base $BASE missing: docker pull"
        if ! timeout "${FLOYD_PULL_TIMEOUT:-300}" docker pull -q "$BASE" >&2; then
            # an explicit --base must be had; a variant's default base (cuda) is optional
            [ "$BASE_GIVEN" = true ] && die "base image $BASE is not present locally and cannot be pulled"
            say "SKIPPED $VARIANT ($TAG): base image $BASE is not present locally and cannot be pulled (no registry?);"
            say "  load it first (docker load -i FILE) or pass --base IMAGE"
            exit 0
        fi
    fi
    base_id=$(docker image inspect -f '{{.Id}}' "$BASE")
fi

# files beside a compose image's Dockerfile (images/<variant>/) belong to its build context
context_files() {
    [ "$DOCKERFILE" = "$HERE/Dockerfile" ] && echo "$DOCKERFILE" && return
    find "$(dirname "$DOCKERFILE")" -maxdepth 1 -type f | LC_ALL=C sort
}

# --- the JupyterLab extension: the wheel ships extensions/labextension/labextension/ -------------
LABEXT="$REPO/extensions/labextension"
labext_stale() {
    [ -f "$LABEXT/labextension/package.json" ] || return 0
    [ -n "$(cd "$LABEXT" && find package.json package-lock.json tsconfig.json src schema style -type f \
        -newer labextension/package.json -print -quit 2>/dev/null)" ]
}
if $NEEDS_WHEEL && [ -d "$LABEXT" ] && labext_stale; then
    t0=$(date +%s.%N)
    if [ -x "$REPO/.venv/bin/python" ] && command -v make >/dev/null 2>&1; then
        say "building the JupyterLab extension: make labextension"
        make -C "$REPO" --no-print-directory labextension >&2 || die "make labextension failed"
    else
        command -v npm >/dev/null 2>&1 || die "npm is needed to build $LABEXT (scripts/ensure-system.sh)"
        say "building the JupyterLab extension: npm ci && npm run build"
        (cd "$LABEXT" && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } &&
            npm run --silent build) >&2 || die "building $LABEXT failed (needs pip jupyter-builder on PATH)"
    fi
    labext_stale && die "$LABEXT/labextension is still missing or stale after the build"
    say "JupyterLab extension built in $(elapsed "$t0")"
fi

# --- skip when nothing changed ------------------------------------------------------------------
build_args=(--build-arg "BASE=$BASE" --build-arg "FRAMEWORK=$FRAMEWORK" --build-arg "CUDA=$CUDA"
    --build-arg "EXTRA_PIP=$EXTRA_PIP")
for a in ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}; do build_args+=(--build-arg "$a"); done

source_hash() {
    local srcs=() p
    for p in pyproject.toml jobs_bridge extensions hub_config jupyter-config; do
        [ -e "$REPO/$p" ] && srcs+=("$p")
    done
    {
        printf '%s\n' "${build_args[@]}" "base-id=$base_id"
        context_files | xargs sha256sum | cut -d' ' -f1
        if $NEEDS_WHEEL; then
            (cd "$REPO" && find "${srcs[@]}" \
                \( -name __pycache__ -o -name node_modules -o -name '*.egg-info' -o -name .ipynb_checkpoints \
                   -o -name '*.tsbuildinfo' -o -path extensions/labextension/lib \) -prune \
                -o -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
        fi
    } | sha256sum | cut -c1-16
}
HASH=$(source_hash)
image_hash() { docker image inspect -f '{{index .Config.Labels "org.floyd.source-hash"}}' "$TAG" 2>/dev/null || true; }

if ! $FORCE && [ "$(image_hash)" = "$HASH" ]; then
    say "$TAG is up to date (source-hash $HASH), skipped in $(elapsed "$T_START"); --force rebuilds"
    echo "$TAG"
    exit 0
fi

# one build per tag at a time (parallel test runs); recheck after waiting
mkdir -p "$LOGDIR"
lockname=$(printf '%s' "$TAG" | tr -c 'A-Za-z0-9_.-' '_')
exec 9>"$LOGDIR/$lockname.lock"
if ! flock -n 9; then
    say "another build of $TAG is running; waiting"
    flock 9
    if ! $FORCE && [ "$(image_hash)" = "$HASH" ]; then
        say "$TAG was built meanwhile (source-hash $HASH)"
        echo "$TAG"
        exit 0
    fi
fi

# --- build context: Dockerfile, the Floyd wheel, the CA bundle ------------------------------------
CTX=$(mktemp -d "${TMPDIR:-/tmp}/floyd-image.XXXXXX")
TMP_TAG="floyd-build/$VARIANT:$$"
cleanup() {
    rm -rf "$CTX"
    docker rmi "$TMP_TAG" >/dev/null 2>&1 || true
}
trap cleanup EXIT

t0=$(date +%s.%N)
mkdir -p "$CTX/src" "$CTX/dist"
if $NEEDS_WHEEL; then
    (cd "$REPO" && tar -cf - \
        --exclude=__pycache__ --exclude='*.pyc' --exclude=node_modules --exclude='*.egg-info' \
        --exclude=.ipynb_checkpoints --exclude='*.tsbuildinfo' --exclude=extensions/labextension/lib \
        $(for f in pyproject.toml README.md LICENSE LICENSE.txt MANIFEST.in setup.py setup.cfg \
            jobs_bridge extensions hub_config jupyter-config; do [ -e "$f" ] && echo "$f"; done)) | tar -C "$CTX/src" -xf -
    if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
    if ! (cd "$CTX/src" && "$PY" -m pip wheel -q --no-deps -w "$CTX/dist" .) >"$CTX/wheel.log" 2>&1; then
        cat "$CTX/wheel.log" >&2
        die "building the Floyd wheel failed"
    fi
    wheel=$(cd "$CTX/dist" && ls ./*.whl) || die "no wheel in $CTX/dist"
    say "wheel ${wheel#./} built in $(elapsed "$t0")"
    # its dependencies, for a Dockerfile that installs them in a layer of their own (images/hub)
    "$PY" - "$CTX/dist/${wheel#./}" >"$CTX/requirements.txt" <<'PYEOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    for line in whl.read(meta).decode().splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            print(line.split(":", 1)[1].strip())
PYEOF
fi
rm -rf "$CTX/src"

context_files | while read -r f; do cp "$f" "$CTX/"; done
if [ -s "$HOST_CA" ]; then
    cp "$HOST_CA" "$CTX/ca-certificates.crt"
else
    say "no CA bundle at $HOST_CA: pip uses the image's own certificates"
    : >"$CTX/ca-certificates.crt"
fi

# --- docker build -------------------------------------------------------------------------------
old_id=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null) || old_id=
LOG="$LOGDIR/$lockname.log"
say "building $TAG (variant $VARIANT, base $BASE, framework $FRAMEWORK${EXTRA_PIP:+, extra $EXTRA_PIP}); log: $LOG"
t0=$(date +%s.%N)
cache=()
$NO_CACHE && cache=(--no-cache)
set +e
if $VERBOSE; then
    docker build --network host --rm --force-rm ${cache[@]+"${cache[@]}"} "${build_args[@]}" -t "$TMP_TAG" "$CTX" 2>&1 |
        tee "$LOG" >&2
else
    docker build --network host --rm --force-rm ${cache[@]+"${cache[@]}"} "${build_args[@]}" -t "$TMP_TAG" "$CTX" 2>&1 |
        tee "$LOG" | grep --line-buffered -E '^Step [0-9]+/[0-9]+ : (RUN|COPY|FROM)' | cut -c1-110 >&2
fi
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    $VERBOSE || tail -n 40 "$LOG" >&2
    die "docker build failed (exit $rc) after $(elapsed "$t0"); full log: $LOG"
fi
say "docker build done in $(elapsed "$t0")"

# --- labels: installed packages, environment, hash ----------------------------------------------
packages=$(docker run --rm --network none --entrypoint cat "$TMP_TAG" /opt/floyd/packages.txt |
    grep -E '^[A-Za-z0-9._-]+==' | paste -sd, -)
[ -n "$packages" ] || die "could not read /opt/floyd/packages.txt from the image"
# (stderr captured: the legacy builder's deprecation notice is noise here)
if ! out=$(printf 'FROM %s\n' "$TMP_TAG" | docker build -q --network host \
    --label "org.floyd.packages=$packages" \
    --label "org.floyd.environment=$VARIANT" \
    --label "org.floyd.framework=$FRAMEWORK" \
    --label "org.floyd.base=$BASE" \
    --label "org.floyd.cuda=$CUDA" \
    --label "org.floyd.source-hash=$HASH" \
    -t "$TAG" - 2>&1); then
    echo "$out" >&2
    die "labelling $TAG failed"
fi
docker rmi "$TMP_TAG" >/dev/null
new_id=$(docker image inspect -f '{{.Id}}' "$TAG")
# the previous image of this tag, when nothing else names or uses it (its shared layers stay)
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ] &&
    [ "$(docker image inspect -f '{{len .RepoTags}}' "$old_id" 2>/dev/null)" = 0 ]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
fi
size=$(docker image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }')
say "$TAG built (${new_id:7:12}, $size, $(tr -cd , <<<"$packages" | wc -c | awk '{ print $1 + 1 }') packages) in $(elapsed "$T_START")"
echo "$TAG"
