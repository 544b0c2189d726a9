#!/usr/bin/env bash
# What caller keys cost on the hot path: one service, the same mock upstream and load generator,
# `llm.complete` anonymous (no key exists), with the key of a team without credits (a lookup in
# the replica's cache, no database round trip), and with the key of a team with credits (one
# atomic reservation in the database before the call, settled after). The three run in turn,
# in rotating order, at 1 and 16 connections. Prints a markdown table.
#   DURATION=8 WARMUP=2 bench/auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
MOCK=127.0.0.1:9320
SERVICE=127.0.0.1:8320
OUT=target/bench/auth
rm -rf "$OUT"; mkdir -p "$OUT"
cargo build --release --quiet
B=target/release/llmrpc

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; return 1; }

"$B" mock-upstream --addr "$MOCK" 2>/dev/null & pids+=($!)
wait_for "http://$MOCK/health"

svc=""
serve() { # database url
  env -i PATH="$PATH" OPENAI_API_KEY=bench OPENAI_BASE_URL="http://$MOCK/v1" LLMRPC_LOG=warn \
    LLMRPC_DATABASE_URL="$1" "$B" serve --addr "$SERVICE" 2>>"$OUT/service.log" &
  svc=$!; pids+=("$svc")
  wait_for "http://$SERVICE/health"
}
stop() { kill -TERM "$svc"; wait "$svc" 2>/dev/null || true; }

# Two databases: one with no key (anonymous service), one with two teams and their keys.
ANON="sqlite://$OUT/anonymous.db"
KEYED="sqlite://$OUT/keyed.db"
admin() { env -i PATH="$PATH" LLMRPC_DATABASE_URL="$KEYED" "$B" admin "$@" 2>/dev/null; }
admin keys create --team ops --role admin >/dev/null
admin teams create --name unlimited >/dev/null
admin teams create --name budgeted --credits 1000000 >/dev/null
UNLIMITED=$(admin keys create --team unlimited --role caller)
BUDGETED=$(admin keys create --team budgeted --role caller)
env -i PATH="$PATH" LLMRPC_DATABASE_URL="$ANON" "$B" admin teams list >/dev/null

run() { # name concurrency [key]
  local name=$1 c=$2 key=()
  [ -n "${3:-}" ] && key=(--api-key "$3")
  "$B" bench --url "http://$SERVICE" --model gpt-4o-mini "${key[@]}" \
    --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" --json > "$OUT/$name-$c.json"
}
for c in 1 16; do
  for round in 1 2; do
    order=(anonymous unlimited budgeted)
    [ "$round" = 2 ] && order=(budgeted unlimited anonymous)
    for mode in "${order[@]}"; do
      case $mode in
        anonymous) serve "$ANON"; run "anonymous-$round" "$c" ;;
        unlimited) serve "$KEYED"; run "unlimited-$round" "$c" "$UNLIMITED" ;;
        budgeted) serve "$KEYED"; run "budgeted-$round" "$c" "$BUDGETED" ;;
      esac
      stop
    done
  done
done

python3 - "$OUT" <<'PY' | tee "$OUT/table.md"
import json, sys
out = sys.argv[1]
def mean(mode, c):
    runs = [json.load(open(f"{out}/{mode}-{r}-{c}.json")) for r in (1, 2)]
    rps = sum(r["requests_per_second"] for r in runs) / 2
    p50 = sum(r["latency_ms"]["p50"] for r in runs) / 2
    p99 = sum(r["latency_ms"]["p99"] for r in runs) / 2
    return rps, p50, p99, sum(r["errors"] for r in runs)
print("| connections | caller | req/s | p50 ms | p99 ms | req/s vs anonymous | added p50 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
labels = (("anonymous", "anonymous (no key exists)"),
          ("unlimited", "key of a team without credits"),
          ("budgeted", "key of a team with credits (SQLite)"))
for c in (1, 16):
    base = mean("anonymous", c)
    for mode, label in labels:
        rps, p50, p99, errors = mean(mode, c)
        print(f"| {c} | {label} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {rps / base[0]:.2f}x | "
              f"{p50 - base[1]:.3f} | {errors} |")
PY
