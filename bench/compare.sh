#!/usr/bin/env bash
# Measures LiteLLM proxy on the same mock upstream, with the same load generator, for the
# side-by-side in docs/benchmarks.md. Installs it into bench/.venv (ignored by git) on first use.
# Normally run by `COMPARE=1 bench/run.sh`, which starts the mock; alone it starts its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
OUT=${OUT:-target/bench}
MOCK=${MOCK:-127.0.0.1:9300}
PROXY=127.0.0.1:4300
B=target/release/llmrpc
mkdir -p "$OUT"

if [ ! -x bench/.venv/bin/litellm ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet --disable-pip-version-check 'litellm[proxy]'
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
if ! curl -sf "http://$MOCK/health" >/dev/null; then
  cargo build --release --quiet
  "$B" mock-upstream --addr "$MOCK" 2>/dev/null & pids+=($!)
fi

cat > "$OUT/litellm.yaml" <<YAML
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://$MOCK/v1
      api_key: bench
general_settings:
  master_key: sk-bench
litellm_settings:
  callbacks: []
  success_callback: []
  failure_callback: []
  telemetry: false
YAML
LITELLM_LOG=ERROR bench/.venv/bin/litellm --config "$OUT/litellm.yaml" --host 127.0.0.1 --port 4300 \
  --num_workers 2 > "$OUT/litellm.log" 2>&1 & pids+=($!)
for _ in $(seq 1 600); do
  curl -sf -H 'Authorization: Bearer sk-bench' "http://$PROXY/health/liveliness" >/dev/null && break
  sleep 0.5
done

rss_kb() { # every LiteLLM process's resident memory, summed
  pgrep -f "bench/.venv" | xargs -r -I{} awk '/VmRSS/ {print $2}' /proc/{}/status 2>/dev/null | awk '{s += $1} END {print s}'
}
for c in 1 16 128; do
  "$B" bench --openai-url "http://$PROXY/v1" --api-key sk-bench --concurrency "$c" \
    --duration "$DURATION" --warmup "$WARMUP" --json > "$OUT/litellm-c$c.json"
  echo "litellm-c$c: $(python3 -c "import json; r=json.load(open('$OUT/litellm-c$c.json')); print(f\"{r['requests_per_second']:.0f} req/s\")")"
done
"$B" bench --openai-url "http://$PROXY/v1" --api-key sk-bench --mode sse --concurrency 1 \
  --model gpt-4o-mini --duration "$DURATION" --warmup "$WARMUP" --json > "$OUT/litellm-stream.json" || true
rss_kb > "$OUT/litellm_rss_kb.txt"
bench/.venv/bin/python -c "import importlib.metadata as m; print(m.version('litellm'))" > "$OUT/litellm_version.txt"
