#!/usr/bin/env bash
# 1,000 calls in flight at once against one provider whose every answer takes 2 s (closed loop,
# 1,000 callers), then 1,500 against the service's default max_in_flight of 1,024: all answered,
# the ones beyond the limit refused at once with -32008 rather than queued. Prints each run's
# counts, latencies and the service's peak memory; docs/benchmarks.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/bench}
LENGTH=${LENGTH:-20}
MOCK=127.0.0.1:9340
SERVICE=127.0.0.1:8340
mkdir -p "$OUT"
# Each call holds a socket to the caller and one upstream.
ulimit -n "$(ulimit -Hn)"
cargo build --release --quiet
B=target/release/llmrpc
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$B" mock-upstream --addr "$MOCK" 2>/dev/null & pids+=($!)
env OPENAI_API_KEY=bench OPENAI_BASE_URL="http://$MOCK/v1" LLMRPC_LOG=warn LLMRPC_DATABASE_URL=off \
  "$B" serve --addr "$SERVICE" 2>/dev/null & svc=$!; pids+=("$svc")
for _ in $(seq 1 100); do curl -sf "http://$SERVICE/health" >/dev/null && break; sleep 0.1; done
for callers in 1000 1500; do
  "$B" bench --url "http://$SERVICE" --model gpt-4o-mini_latency-2000 --concurrency "$callers" \
    --duration "$LENGTH" --warmup 4 --json > "$OUT/inflight-$callers.json"
  python3 - "$OUT/inflight-$callers.json" "$callers" "$(awk '/VmHWM/ {print $2}' /proc/$svc/status)" <<'PY'
import json, sys
r, callers, hwm = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
l = r["latency_ms"]
ok = r["requests"] - r["errors"]
# A refused caller asks again at once, so its refusals take (callers beyond the limit x seconds)
# / refusals each, on average.
refused = (f"{r['errors']} refused with -32008, each within {(int(callers) - 1024) * r['seconds'] / r['errors'] * 1000:.1f} ms on average"
           if r["errors"] else "none refused")
print(f"{callers} callers, upstream 2 s: {ok} calls answered in {r['seconds']:.0f} s, {refused}; "
      f"answered latency p50 {l['p50']:.0f} ms, p99 {l['p99']:.0f} ms, max {l['max']:.0f} ms; "
      f"service peak RSS {hwm/1024:.0f} MiB")
PY
done | tee "$OUT/inflight.txt"
