# The two commands a newcomer needs: `make demo` (installs, renders the built-in example report to
# report.pdf) and `make test` (installs what the tests need, then the whole suite; what CI runs).
# Python packages go into .venv inside this checkout (hack/install-deps creates it if missing),
# so nothing outside the checkout changes: not another checkout's editable install either.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export VENV
# The venv's bin first, so the scripts make runs (python3, tidings, kubectl-tidings) use it too.
export PATH := $(abspath $(VENV))/bin:$(shell hack/build-k8s-binaries --print-dir):$(shell hack/install-go-tools --print-dir):$(PATH)
LINTED := operator devkit tests bench hack

.PHONY: demo test deps test-deps binaries node-binaries images tools lint format dev-up dev-down \
	cluster-demo kind-demo kind-demo-down bench

demo: deps
	$(PYTHON) -m tidings render examples/changes_summary.yaml -o report.pdf --at 2024-05-13T09:00:00+02:00
	@echo "Wrote report.pdf: the changes_summary example for the week of 6-12 May 2024."

deps:
	hack/install-deps

test-deps:
	hack/install-deps --test

binaries:
	hack/build-k8s-binaries

# containerd, its runc shim and crictl for the real node (tests/node, cluster-demo).
node-binaries:
	hack/build-node-binaries

# The renderer and pause images, built by buildah from renderer-image/Dockerfile (no Docker).
images:
	hack/build-images

tools:
	hack/install-go-tools

test: test-deps binaries node-binaries tools lint images
	$(PYTHON) -m pytest

# Style, then who may import whom (pyproject's [tool.importlinter]), then the core's types.
lint:
	$(PYTHON) -m ruff check $(LINTED)
	$(PYTHON) -m ruff format --check $(LINTED)
	$(VENV)/bin/lint-imports --no-logo
	$(PYTHON) -m mypy

format:
	$(PYTHON) -m ruff format $(LINTED)
	$(PYTHON) -m ruff check --fix $(LINTED)

# Speed and memory against baselines measured in the same run; appends to docs/benchmarks.md.
bench: test-deps binaries
	$(PYTHON) -m bench.render
	$(PYTHON) -m bench.cold_start
	$(PYTHON) -m bench.operator
	$(PYTHON) -m bench.node

dev-up:
	hack/dev-cluster up

dev-down:
	hack/dev-cluster down

# The whole loop on a local node: Linux, root, no Docker (README, quickstart b).
cluster-demo: test-deps binaries node-binaries tools
	hack/cluster-demo

# Needs Docker, kind, kubectl and helm; not part of CI (README, quickstart c).
kind-demo:
	hack/kind-demo

kind-demo-down:
	hack/kind-demo down
