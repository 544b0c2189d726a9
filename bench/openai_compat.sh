#!/usr/bin/env bash
# The OpenAI-compatible surface beside the JSON-RPC path: the same mock upstream, the same load
# generator (`llmrpc bench`), one service; direct to the mock, through `POST /` (llm.complete) and
# through `POST /v1/chat/completions`, at 1 and 16 connections, in alternating order. Prints a
# markdown table of throughput and latency, and the latency each path adds over direct.
#   DURATION=8 WARMUP=2 bench/openai_compat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
MOCK=127.0.0.1:9310
SERVICE=127.0.0.1:8310
OUT=target/bench/openai-compat
mkdir -p "$OUT"
cargo build --release --quiet
B=target/release/llmrpc

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; return 1; }

"$B" mock-upstream --addr "$MOCK" 2>/dev/null & pids+=($!)
wait_for "http://$MOCK/health"
env -i PATH="$PATH" OPENAI_API_KEY=bench OPENAI_BASE_URL="http://$MOCK/v1" LLMRPC_LOG=warn \
  LLMRPC_DATABASE_URL="sqlite://$OUT/bench.db" "$B" serve --addr "$SERVICE" 2>/dev/null & pids+=($!)
wait_for "http://$SERVICE/health"

run() { # name concurrency args…
  local name=$1 c=$2; shift 2
  "$B" bench --model gpt-4o-mini --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" \
    --json "$@" > "$OUT/$name-$c.json"
}
for c in 1 16; do
  run direct "$c" --openai-url "http://$MOCK/v1"
  run jsonrpc "$c" --url "http://$SERVICE"
  run openai "$c" --openai-url "http://$SERVICE/v1"
  run direct2 "$c" --openai-url "http://$MOCK/v1"
done

python3 - "$OUT" <<'PY' | tee "$OUT/table.md"
import json, sys
out = sys.argv[1]
def load(name, c):
    return json.load(open(f"{out}/{name}-{c}.json"))
print("| connections | path | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
for c in (1, 16):
    d1, d2 = load("direct", c), load("direct2", c)
    direct = {k: (d1["latency_ms"][k] + d2["latency_ms"][k]) / 2 for k in ("p50", "p99")}
    for name, label in (("jsonrpc", "JSON-RPC `llm.complete`"), ("openai", "`/v1/chat/completions`")):
        r = load(name, c)
        lat = r["latency_ms"]
        print(f"| {c} | {label} | {r['requests_per_second']:.0f} | {lat['p50']:.3f} | {lat['p99']:.3f} | "
              f"{lat['p50'] - direct['p50']:.3f} | {lat['p99'] - direct['p99']:.3f} | {r['errors']} |")
    rps = (d1["requests_per_second"] + d2["requests_per_second"]) / 2
    print(f"| {c} | direct to the mock (mean of the runs before and after) | {rps:.0f} | "
          f"{direct['p50']:.3f} | {direct['p99']:.3f} | | | {d1['errors'] + d2['errors']} |")
PY
