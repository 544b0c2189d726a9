# `make run` and `make test` are the two commands of the README; both work on a fresh machine
# with only the Rust toolchain and python3 installed.

CARGO ?= cargo
VENV  := .venv
# Python with the packages of tests/interop/requirements.txt: `websockets` for the WebSocket
# examples of proto-docs/, the official `openai` SDK for tests/it/openai_sdk.rs, the official
# `a2a-sdk` for tests/it/a2a_sdk.rs.
PYTHON := $(CURDIR)/$(VENV)/bin/python

.PHONY: run test lint build test-live demo fuzz

run: build
	./target/release/llmrpc serve

build:
	$(CARGO) build --release

# The PostgreSQL and Redis tests are ignored by the first step; the second runs them when their
# server answers (always when CI=true), or says why they stay ignored.
test: lint $(VENV)/ready
	LLMRPC_TEST_PYTHON=$(PYTHON) $(CARGO) test --all-targets
	CARGO='$(CARGO)' tests/run-services.sh

# The whole path without any API key: the mock upstream and the service wired together, one
# completion, one stream, the trace the ledger kept of both, and an agent's tool loop in two calls.
DEMO = ./target/release/llmrpc
# Reads an llm.complete answer on stdin and prints its result at the path given (strings as they
# are, the rest as JSON), or fails with the whole answer when it is an error.
DEMO_RESULT = python3 -c 'import functools, json, sys; r = json.load(sys.stdin); "result" in r or sys.exit("llm.complete failed: " + json.dumps(r)); v = functools.reduce(lambda v, k: v[int(k)] if k.isdigit() else v[k], sys.argv[1:], r["result"]); print(v if isinstance(v, str) else json.dumps(v))'
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
	$(DEMO) trace --url http://127.0.0.1:8099 demo-trace; \
	echo '== a tool loop through llm.complete (OpenAI, mocked): a tool offered, then its result replayed'; \
	rpc() { curl -s -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"llm.complete","params":'"$$1"'}' http://127.0.0.1:8099/; }; \
	tools='[{"type":"function","function":{"name":"get_weather","description":"The current weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]'; \
	ask='{"role":"user","content":"What is the weather in Paris?"}'; \
	first=$$(rpc '{"model":"gpt-4o-mini","tools":'"$$tools"',"messages":['"$$ask"']}'); \
	calls=$$(printf '%s' "$$first" | $(DEMO_RESULT) tool_calls); \
	id=$$(printf '%s' "$$first" | $(DEMO_RESULT) tool_calls 0 id); \
	echo "tool call     $$calls"; \
	second=$$(rpc '{"model":"gpt-4o-mini","tools":'"$$tools"',"messages":['"$$ask"',{"role":"assistant","content":null,"tool_calls":'"$$calls"'},{"role":"tool","tool_call_id":"'"$$id"'","content":"Sunny, 18 C"}]}'); \
	answer=$$(printf '%s' "$$second" | $(DEMO_RESULT) content); \
	echo "final answer  $$answer"

# Real provider calls with the keys of .env.test; a provider without a key is reported ignored.
test-live:
	LLMRPC_LIVE=1 $(CARGO) test --test live -- --test-threads 1

# Each fuzz target of tests/fuzz/ for FUZZ_SECONDS on the nightly toolchain (cargo fuzz needs
# it; it is not part of `make test`). The run starts from the committed seeds
# (tests/fuzz/seeds/<target>/) and grows tests/fuzz/corpus/<target>/, which git ignores and which
# is then shrunk to the inputs that add coverage; a crash stops the run and is left in
# tests/fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := envelope params sse openai anthropic gemini surfaces
FUZZ := $(CARGO) +nightly fuzz
FUZZ_FLAGS := --fuzz-dir tests/fuzz --sanitizer none
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --version 0.13.2 --locked
	set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p tests/fuzz/corpus/$$t; \
		$(FUZZ) run $(FUZZ_FLAGS) $$t tests/fuzz/corpus/$$t tests/fuzz/seeds/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 -rss_limit_mb=2048; \
		$(FUZZ) cmin $(FUZZ_FLAGS) $$t tests/fuzz/corpus/$$t -- -set_cover_merge=1; \
	done

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Rebuilt from scratch whenever the pins change, so no package of an older pin lingers.
$(VENV)/ready: tests/interop/requirements.txt
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
	touch $@
