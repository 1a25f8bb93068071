# The two commands a newcomer needs are `make demo` (install, render the embedded example) and
# `make test` (the whole suite, exactly what CI runs).
PYTHON ?= python3
export PATH := $(shell hack/build-k8s-binaries --print-dir):$(PATH)

.PHONY: install demo test lint format binaries dev-up dev-down bench

install:
	$(PYTHON) -m pip install -e '.[test]'

binaries:
	hack/build-k8s-binaries

test: binaries lint
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check operator tests bench hack
	$(PYTHON) -m ruff format --check operator tests bench hack

format:
	$(PYTHON) -m ruff format operator tests bench hack
	$(PYTHON) -m ruff check --fix operator tests bench hack

dev-up:
	hack/dev-cluster up

dev-down:
	hack/dev-cluster down
