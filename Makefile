# Floyd Workspaces: developer entry points (GNU make).
#
#   make up       run the platform locally (JupyterHub + jobs bridge), Ctrl-C stops it
#   make test     lint + the whole test suite (what CI runs: .ci/run)
#   make lint     ruff and mypy (jobs_bridge, hub_config/floyd_hub, extensions/floyd)
#   make fuzz     schemathesis, long profile, against a platform of its own (FUZZ_ARGS=--max-examples 200)
#   make bench    every benchmarks/*.py   (make bench BENCH_ARGS=--quick)
#   make images   build the environment images: base floyd/base:bookworm, then floyd/cpu:latest (IMAGE_VARIANTS="pytorch tensorflow" adds more)
#   make compose-images  the images docker-compose.yml runs: floyd/hub:latest and floyd/postgres:latest (no registry)
#   make venv     create .venv / reinstall it when pyproject.toml changed
#   make labextension  build the JupyterLab extension (npm) and install it into .venv
#   make clean    remove test output and the venv stamp (never ./var)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed
BENCH_ARGS ?=
FUZZ_ARGS ?=
UP_ARGS ?=
IMAGE_ARGS ?=
# make images IMAGE_VARIANTS='pytorch tensorflow cuda' IMAGE_BUILD_ARGS=--force (images/build.sh)
IMAGE_VARIANTS ?=
IMAGE_BUILD_ARGS ?=
# make test NO_DOCKER=1: run the tests even when no Docker engine can be had
NO_DOCKER ?=

# make test PYTEST_ADDOPTS='-x -k jobs' reaches pytest through the environment
export PYTEST_ADDOPTS
# browsers come from Debian (/usr/bin/chromium), never from playwright's download
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

# Prints the DOCKER_HOST to use (last line of ensure-docker.sh), or fails.
ENSURE_DOCKER := bash scripts/ensure-docker.sh | tail -n 1

.PHONY: help venv labextension up test lint fuzz bench images compose-images clean

help:
	@sed -n '3,12s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

venv: $(STAMP)

# The JupyterLab extension (extensions/labextension): npm ci when package-lock.json changed, then
# tsc + jupyter-builder (from the venv) into its labextension/ folder, which the wheel ships as
# data-files (pyproject.toml). An editable install does not install data-files, so the built
# extension is also copied into the venv's share/jupyter/labextensions for `make up` and the tests.
LABEXT := extensions/labextension
LABEXT_OUT := $(LABEXT)/labextension/package.json
LABEXT_SRC := $(LABEXT)/package.json $(LABEXT)/tsconfig.json $(wildcard $(LABEXT)/src/*.ts \
	$(LABEXT)/schema/*.json $(LABEXT)/style/*)
LABEXT_VENV := $(VENV)/share/jupyter/labextensions/floyd-labextension

$(LABEXT)/node_modules/.package-lock.json: $(LABEXT)/package-lock.json
	@command -v npm >/dev/null 2>&1 || bash scripts/ensure-system.sh chromium  # (always checks node and npm)
	cd $(LABEXT) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(LABEXT_OUT): $(LABEXT_SRC) $(LABEXT)/node_modules/.package-lock.json $(STAMP)
	cd $(LABEXT) && PATH="$(abspath $(VENV))/bin:$$PATH" npm run --silent build
	@touch $@

$(LABEXT_VENV)/package.json: $(LABEXT_OUT)
	rm -rf $(LABEXT_VENV)
	mkdir -p $(dir $(LABEXT_VENV)) $(VENV)/etc/jupyter/jupyter_server_config.d
	cp -r $(LABEXT)/labextension $(LABEXT_VENV)
	cp jupyter-config/server-config/floyd.json $(VENV)/etc/jupyter/jupyter_server_config.d/floyd.json

labextension: $(LABEXT_VENV)/package.json

up: venv labextension
	@bash scripts/ensure-system.sh configurable-http-proxy $$( [ "$$(id -u)" = 0 ] && echo haproxy docker debootstrap )
	@if host=$$($(ENSURE_DOCKER)); then \
		export DOCKER_HOST="$$host"; echo "make up: DOCKER_HOST=$$host"; \
		{ bash images/bootstrap.sh && bash images/build.sh --variant cpu >/dev/null; } || \
			echo "make up: the workspace image is not built (see above); workspaces will say so" >&2; \
	else \
		echo "make up: no Docker engine; workspaces run as local processes" >&2; \
	fi; \
	export FLOYD_ROOT="$${FLOYD_ROOT:-$(CURDIR)/var}"; \
	exec $(VENV)/bin/floyd-up $(UP_ARGS)

test: venv labextension
	@bash scripts/ensure-system.sh
	@if host=$$($(ENSURE_DOCKER)); then \
		export DOCKER_HOST="$$host"; \
	elif [ -n "$(NO_DOCKER)" ]; then \
		echo "make test: no Docker engine (NO_DOCKER set, going on)" >&2; \
	else \
		echo "make test: no Docker engine (see above); NO_DOCKER=1 runs the tests without it" >&2; exit 1; \
	fi; \
	$(VENV)/bin/ruff check . ; \
	$(VENV)/bin/mypy ; \
	(cd $(LABEXT) && npm test --silent) ; \
	$(VENV)/bin/python -m pytest -q tests

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Every check schemathesis has, all phases (stateful too), with a user's token and with none,
# many more examples than the bounded profile of `make test` (tests/fuzz); prints the counts.
fuzz: venv
	@if host=$$($(ENSURE_DOCKER)); then export DOCKER_HOST="$$host"; fi; \
	$(VENV)/bin/python -m tests.support.fuzz $(FUZZ_ARGS)

# What the benchmarks use besides the venv: CHP (the platform of serving.py and others), haproxy
# (proxy_dataplane.py) and wrk (the c=32 rows' load, benchmarks/loadgen.py). Installed as root; when
# that cannot be, the benchmarks still run: proxy_dataplane.py skips without haproxy, and the c=32
# rows fall back to the asyncio client without wrk (both say so).
bench: venv
	@bash scripts/ensure-system.sh configurable-http-proxy haproxy wrk || \
		echo "make bench: scripts/ensure-system.sh failed (see above), going on" >&2
	@shopt -s nullglob; files=(); for f in benchmarks/*.py; do \
		case "$$(basename $$f)" in common.py|loadgen.py) ;; *) files+=("$$f") ;; esac; done; \
	if [ $${#files[@]} -eq 0 ]; then echo "make bench: no benchmarks/*.py"; exit 0; fi; \
	for f in "$${files[@]}"; do \
		echo "== $$f $(BENCH_ARGS)"; \
		$(VENV)/bin/python "$$f" $(BENCH_ARGS); \
	done

images: labextension
	@bash scripts/ensure-system.sh docker debootstrap
	@host=$$($(ENSURE_DOCKER)); export DOCKER_HOST="$$host"; \
	bash images/bootstrap.sh $(IMAGE_ARGS); \
	for v in cpu $(filter-out cpu,$(IMAGE_VARIANTS)); do \
		bash images/build.sh --variant "$$v" $(IMAGE_BUILD_ARGS); \
	done

# The hub (JupyterHub + CHP + the bridge) and PostgreSQL images on floyd/base:bookworm; a
# registry-backed build passes IMAGE_BUILD_ARGS='--base python:3.11-slim' (docs/admin.md, "docker-compose").
compose-images: labextension
	@bash scripts/ensure-system.sh docker debootstrap compose
	@host=$$($(ENSURE_DOCKER)); export DOCKER_HOST="$$host"; \
	bash images/bootstrap.sh $(IMAGE_ARGS); \
	bash images/build.sh --variant postgres $(IMAGE_BUILD_ARGS); \
	bash images/build.sh --variant hub $(IMAGE_BUILD_ARGS)

clean:
	rm -f $(STAMP)
	rm -rf test-output .pytest_cache .ruff_cache
