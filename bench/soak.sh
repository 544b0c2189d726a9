#!/usr/bin/env bash
# A soak at a fixed rate (open loop): the service's resident memory sampled every 10 s must stay
# flat, and no call may fail. RATE=500 LENGTH=300 bench/soak.sh; bench/report.py includes it.
# MODE=mixed (RATE=60 LENGTH=1800 by default) mixes completions, streams read to the end,
# streams the caller closes or cancels, and upstreams failing, hanging and sending garbage
# (bench/soak_mixed.py): every call must be answered, memory and open files stay flat, and
# every call is in the ledger after the service has stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-complete}
if [[ $MODE == mixed ]]; then RATE=${RATE:-60} LENGTH=${LENGTH:-1800}; fi
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
  ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL="http://$MOCK" \
  GEMINI_API_KEY=bench GEMINI_BASE_URL="http://$MOCK" LLMRPC_BREAKER_THRESHOLD=1000000000 \
  LLMRPC_DATABASE_URL="sqlite://$OUT/soak.db" "$B" serve --addr "$SERVICE" 2>/dev/null & svc=$!; pids+=("$svc")
for _ in $(seq 1 100); do curl -sf "http://$SERVICE/health" >/dev/null && break; sleep 0.1; done

: > "$OUT/soak_rss_kb.txt"
: > "$OUT/soak_fds.txt"
( while kill -0 "$svc" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$svc/status" >> "$OUT/soak_rss_kb.txt"
    ls "/proc/$svc/fd" | wc -l >> "$OUT/soak_fds.txt"
    sleep 10
  done ) &
sampler=$!
if [[ $MODE == mixed ]]; then
  make -s .venv/ready
  .venv/bin/python bench/soak_mixed.py "http://$SERVICE" "$RATE" "$LENGTH" > "$OUT/soak_mixed.json"
  kill "$sampler" 2>/dev/null || true
  # The ledger is complete once the service has drained and written its last records.
  kill -TERM "$svc"; wait "$svc" || true
  python3 - "$OUT" <<'PY' | tee "$OUT/soak_mixed.txt"
import json, sqlite3, statistics, sys
out = sys.argv[1]
r = json.load(open(f"{out}/soak_mixed.json"))
db = sqlite3.connect(f"{out}/soak.db")
rows = db.execute("SELECT count(*) FROM calls").fetchone()[0]
by_status = dict(db.execute("SELECT status, count(*) FROM calls GROUP BY status"))
rss = [int(x) for x in open(f"{out}/soak_rss_kb.txt").read().split()]
fds = [int(x) for x in open(f"{out}/soak_fds.txt").read().split()]
# The first minute covers start-up and the first connections; flatness is judged after it, as the
# change between the medians of the first and last fifths (a sample also counts the sockets of the
# calls in flight at that moment).
rss, fds = rss[6:] or rss, fds[6:] or fds
def drift(xs):
    k = max(1, len(xs) // 5)
    first, last = statistics.median(xs[:k]), statistics.median(xs[-k:])
    return first, last, (last - first) / first
r0, r1, rd = drift(rss)
f0, f1, fd = drift(fds)
print(f"{r['sent']} calls at {r['rate']:.0f} req/s for {r['seconds']:.0f} s: {r['answered']} answered, "
      f"{r['unanswered']} unanswered {r['unanswered_by_reason'] or ''}".rstrip())
print(f"load generator: {r['sent_late_by_over_1s']} calls sent over 1 s late, the latest by {r['most_late_s']} s")
for kind, outcomes in r["outcomes"].items():
    print(f"  {kind:<17} {json.dumps(outcomes)}")
print(f"ledger after the service stopped: {rows} rows for {r['sent']} calls {by_status}")
print(f"resident memory: median {r0/1024:.1f} MiB in the first fifth, {r1/1024:.1f} MiB in the last ({rd:+.1%}); "
      f"range {min(rss)/1024:.1f}-{max(rss)/1024:.1f} MiB over {len(rss)} samples")
print(f"open files: median {f0:.0f} in the first fifth, {f1:.0f} in the last ({fd:+.1%}); range {min(fds)}-{max(fds)}")
PY
  exit 0
fi
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
