#!/usr/bin/env bash
# Reproduces docs/benchmarks.md on this machine: the mock upstream directly and through llmrpc
# at 1, 16 and 128 connections, time to first chunk, 1,000 concurrent streams, the ledger's
# cost, and the service's peak memory and CPU time per request. Everything runs on 127.0.0.1.
#   DURATION=10 WARMUP=2 bench/run.sh        (seconds per measurement)
#   COMPARE=1 bench/run.sh                    (also LiteLLM, through bench/compare.sh)
#   LEDGER_ROUNDS=6 bench/run.sh              (pairs of runs with the ledger on and off)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
OUT=target/bench
MOCK=127.0.0.1:9300
SERVICE=127.0.0.1:8300
mkdir -p "$OUT"
rm -f "$OUT"/direct-* "$OUT"/through-* "$OUT"/streams-* "$OUT"/ledger-* "$OUT"/litellm* "$OUT"/peak_rss_kb.txt "$OUT"/bench.db* "$OUT"/cpu-*.stat
cargo build --release --quiet
B=target/release/llmrpc

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { # url
  for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

# The machine's CPU account (/proc/stat) at the start and end of parts of the run: on a VM, its
# steal time says how much of the CPU the host gave to others, which moves every figure here.
cpu_account() { head -1 /proc/stat > "$OUT/cpu-$1.stat"; }
cpu_account start

"$B" mock-upstream --addr "$MOCK" 2>/dev/null & pids+=($!)
wait_for "http://$MOCK/health"

svc=""
# Every start gets a new ledger file, so that each measurement sees a database of about the same
# size rather than everything earlier measurements wrote: the ledger's cost grows with its size.
start_service() { # database url
  rm -f "$OUT"/bench.db*
  env OPENAI_API_KEY=bench OPENAI_BASE_URL="http://$MOCK/v1" LLMRPC_LOG=warn \
    LLMRPC_DATABASE_URL="$1" "$B" serve --addr "$SERVICE" 2>>"$OUT/service.log" &
  svc=$!; pids+=("$svc")
  wait_for "http://$SERVICE/health"
}
stop_service() { kill -TERM "$svc"; wait "$svc" 2>/dev/null || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$svc/stat"; }
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$svc/status"; }

bench() { # name, then bench arguments
  local name=$1; shift
  "$B" bench --duration "$DURATION" --warmup "$WARMUP" --json "$@" > "$OUT/$name.json"
  echo "$name: $(python3 -c "import json,sys; r=json.load(open('$OUT/$name.json')); print(f\"{r['requests_per_second']:.0f} req/s, p50 {r['latency_ms']['p50']:.3f} ms, errors {r['errors']}\")")"
}

# Through llmrpc, with CPU time per request taken from the kernel's account of the process.
through() { # name, then bench arguments
  local name=$1; shift
  local before after
  before=$(cpu_ticks)
  bench "$name" --url "http://$SERVICE" "$@"
  after=$(cpu_ticks)
  echo "$((after - before))" > "$OUT/$name.ticks"
}

for c in 1 16 128; do
  bench "direct-c$c" --openai-url "http://$MOCK/v1" --concurrency "$c"
done
start_service "sqlite://$OUT/bench.db"
for c in 1 16 128; do
  through "through-c$c" --concurrency "$c"
done
STREAM_MODEL=gpt-4o-mini_chunks-20_interval-2
bench direct-stream --openai-url "http://$MOCK/v1" --mode sse --concurrency 1 --model "$STREAM_MODEL"
through through-stream --mode sse --concurrency 1 --model "$STREAM_MODEL"
stop_service
# 1,000 streams held at once, by a service that has done nothing else, so that its peak memory
# is the streams': each lasts about a second (50 chunks, 20 ms apart).
start_service "sqlite://$OUT/bench.db"
through streams-1000 --mode ws --concurrency 1000 --model gpt-4o-mini_chunks-50_interval-20
peak_rss_kb > "$OUT/peak_rss_kb.txt"
stop_service

# The ledger's cost: the same load with it on and off, in pairs run back to back, each pair in
# the other order than the last, so that drift in the shared machine's speed falls on both.
ledger_on() { start_service "sqlite://$OUT/bench.db"; through "ledger-on-$1" --concurrency 16; stop_service; }
ledger_off() { start_service off; through "ledger-off-$1" --concurrency 16; stop_service; }
cpu_account ledger-start
for round in $(seq 1 "${LEDGER_ROUNDS:-6}"); do
  if [ $((round % 2)) = 1 ]; then ledger_on "$round"; ledger_off "$round"
  else ledger_off "$round"; ledger_on "$round"; fi
done

cpu_account ledger-end

if [ "${COMPARE:-0}" = 1 ]; then
  MOCK="$MOCK" OUT="$OUT" DURATION="$DURATION" WARMUP="$WARMUP" bench/compare.sh
fi

bench/openai_compat.sh >/dev/null
bench/auth.sh >/dev/null

cpu_account end
mkdir -p docs
python3 bench/report.py "$OUT" > docs/benchmarks.md
echo "wrote docs/benchmarks.md"
