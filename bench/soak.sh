#!/usr/bin/env bash
# A soak at a fixed rate (open loop): the service's resident memory sampled every 10 s must stay
# flat, and no call may fail. RATE=500 LENGTH=300 bench/soak.sh; bench/report.py includes it.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-500}
LENGTH=${LENGTH:-300}
OUT=${OUT:-target/bench}
MOCK=127.0.0.1:9310
SERVICE=127.0.0.1:8310
mkdir -p "$OUT"
cargo build --release --quiet
B=target/release/llmrpc
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$B" mock-upstream --addr "$MOCK" 2>/dev/null & pids+=($!)
rm -f "$OUT"/soak.db*
env OPENAI_API_KEY=bench OPENAI_BASE_URL="http://$MOCK/v1" LLMRPC_LOG=warn \
  LLMRPC_DATABASE_URL="sqlite://$OUT/soak.db" "$B" serve --addr "$SERVICE" 2>/dev/null & svc=$!; pids+=("$svc")
for _ in $(seq 1 100); do curl -sf "http://$SERVICE/health" >/dev/null && break; sleep 0.1; done

: > "$OUT/soak_rss_kb.txt"
( while kill -0 "$svc" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$svc/status" >> "$OUT/soak_rss_kb.txt"; sleep 10; done ) &
sampler=$!
"$B" bench --url "http://$SERVICE" --rate "$RATE" --duration "$LENGTH" --warmup 30 --json > "$OUT/soak.json"
kill "$sampler" 2>/dev/null || true
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
r = json.load(open(f"{out}/soak.json"))
rss = [int(x) for x in open(f"{out}/soak_rss_kb.txt").read().split()]
# The first samples cover start-up and warm-up; flatness is judged on the measured part.
steady = rss[3:] or rss
print(f"soak: {r['requests']} calls at {r['rate']} req/s, {r['errors']} errors; "
      f"RSS {min(steady)/1024:.1f}–{max(steady)/1024:.1f} MiB ({(max(steady)-min(steady))/min(steady):.1%} spread)")
PY
