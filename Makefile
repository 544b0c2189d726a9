# `make run` and `make test` are the two commands of the README; both work on a fresh machine
# with only the Rust toolchain and python3 installed.

CARGO ?= cargo
VENV  := .venv
# Python with the `websockets` package, for the WebSocket examples of proto-docs/.
PYTHON := $(CURDIR)/$(VENV)/bin/python

.PHONY: run test lint build test-live

run: build
	./target/release/llmrpc serve

build:
	$(CARGO) build --release

test: lint $(VENV)/ready
	LLMRPC_TEST_PYTHON=$(PYTHON) $(CARGO) test --all-targets

# Real provider calls with the keys of .env.test; providers without a key are skipped.
test-live:
	$(CARGO) test --test live -- --ignored --nocapture --test-threads 1

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

$(VENV)/ready:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'websockets>=13'
	touch $@
