# `make run` and `make test` are the two commands of the README; both work on a fresh machine
# with only the Rust toolchain and python3 installed.

CARGO ?= cargo
VENV  := .venv
# Python with the `websockets` package, for the WebSocket examples of proto-docs/.
PYTHON := $(CURDIR)/$(VENV)/bin/python

.PHONY: run test lint build test-live demo

run: build
	./target/release/llmrpc serve

build:
	$(CARGO) build --release

# The PostgreSQL tests are ignored by the first step; the second runs them when a server answers
# (always when CI=true), or says why they stay ignored.
test: lint $(VENV)/ready
	LLMRPC_TEST_PYTHON=$(PYTHON) $(CARGO) test --all-targets
	CARGO='$(CARGO)' tests/run-postgres.sh

# The whole path without any API key: the mock upstream and the service wired together, one
# completion, one stream, and the trace the ledger kept of both.
DEMO = ./target/release/llmrpc
demo: build
	@set -e; \
	$(DEMO) mock-upstream --addr 127.0.0.1:9099 2>/dev/null & mock=$$!; \
	OPENAI_API_KEY=demo OPENAI_BASE_URL=http://127.0.0.1:9099/v1 \
	ANTHROPIC_API_KEY=demo ANTHROPIC_BASE_URL=http://127.0.0.1:9099 \
	GEMINI_API_KEY=demo GEMINI_BASE_URL=http://127.0.0.1:9099 \
	LLMRPC_DATABASE_URL=sqlite://target/demo.db LLMRPC_LOG=warn \
	$(DEMO) serve --addr 127.0.0.1:8099 & service=$$!; \
	trap 'kill $$mock $$service 2>/dev/null' EXIT; \
	for i in $$(seq 1 50); do curl -sf http://127.0.0.1:8099/health >/dev/null && break; sleep 0.1; done; \
	echo '== llm.complete through the tier "fast" (OpenAI, mocked)'; \
	$(DEMO) complete --url http://127.0.0.1:8099 --model fast --trace-id demo-trace "Say hello."; \
	echo '== llm.stream from Anthropic (mocked: 8 chunks, 100 ms apart)'; \
	$(DEMO) stream --url http://127.0.0.1:8099 --model claude-sonnet-4-5_chunks-8_interval-100 --trace-id demo-trace "Count to eight."; \
	echo '== llmrpc trace demo-trace'; \
	$(DEMO) trace --url http://127.0.0.1:8099 demo-trace

# Real provider calls with the keys of .env.test; a provider without a key is reported ignored.
test-live:
	LLMRPC_LIVE=1 $(CARGO) test --test live -- --test-threads 1

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

$(VENV)/ready:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'websockets>=13'
	touch $@
