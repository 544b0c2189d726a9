#!/usr/bin/env bash
# What the service does when what it stands on fails under load, checked against the real thing:
# a PostgreSQL server of its own stopped and started again, the SQLite ledger's file system made
# read-only and then writable, its disk filled and then freed, the OTLP collector down. Each
# prints whether every call was answered and every record written (or counted as dropped).
# Needs root (mount, and PostgreSQL's own binaries run as the postgres user); what cannot run is
# skipped with its reason. The results are in docs/benchmarks.md#faults.
#
#   bench/faults.sh               # all four
#   bench/faults.sh postgres      # one: postgres, readonly, full, otlp
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/bench}
RATE=${RATE:-100}
MOCK=127.0.0.1:9320
SERVICE=127.0.0.1:8320
PG_PORT=5499
mkdir -p "$OUT"
cargo build --release --quiet
B=$PWD/target/release/llmrpc
WORK=$(mktemp -d /tmp/llmrpc-faults.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -n ${PGBIN:-} && -d $WORK/pg ]] && su postgres -c "$PGBIN/pg_ctl -D $WORK/pg -m immediate stop" >/dev/null 2>&1 || true
  for m in "$WORK"/mnt-*; do umount "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$B" mock-upstream --addr "$MOCK" 2>/dev/null & pids+=($!)

# Starts the service with the ledger at $1 (more variables after it); its pid in $svc.
serve() {
  local url=$1; shift
  env OPENAI_API_KEY=bench OPENAI_BASE_URL="http://$MOCK/v1" LLMRPC_LOG=info LLMRPC_LOG_FORMAT=json \
    LLMRPC_DATABASE_URL="$url" "$@" "$B" serve --addr "$SERVICE" 2>"$WORK/service.log" &
  svc=$!; pids+=("$svc")
  for _ in $(seq 1 100); do curl -sf "http://$SERVICE/health" >/dev/null && return; sleep 0.1; done
  echo "the service did not start:"; cat "$WORK/service.log"; exit 1
}

# Load for $1 seconds at $RATE calls/s in the background; its report in $WORK/load.json.
load() {
  "$B" bench --url "http://$SERVICE" --rate "$RATE" --duration "$1" --warmup 0 --json > "$WORK/load.json" &
  loader=$!
}

metric() { curl -s "http://$SERVICE/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# Stops the service (it writes what it holds on the way out) and reports.
finish() {
  local name=$1 rows_cmd=$2
  local dropped failed
  dropped=$(metric llm_ledger_dropped_total) failed=$(metric llm_ledger_failed_total)
  local stopped=$SECONDS
  kill -TERM "$svc"; wait "$svc" || true
  cp "$WORK/service.log" "$OUT/faults-${FUNCNAME[1]#check_}.log"
  local rows requests errors
  rows=$(eval "$rows_cmd")
  requests=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$WORK/load.json")
  errors=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"])' "$WORK/load.json")
  local held back
  held=$(grep -c 'ledger database unavailable' "$WORK/service.log" || true)
  back=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    fields = json.loads(line).get("fields", {}) if line.startswith("{") else {}
    if str(fields.get("message", "")).startswith("ledger database back"):
        print(fields.get("seconds")); break' "$WORK/service.log")
  echo "$name: $requests calls, $errors errors; ledger $rows rows, $dropped dropped, $failed failed;" \
    "$([[ $held -gt 0 ]] && echo "outage logged, back after ${back:-?} s" || echo "no outage logged");" \
    "stopped in $((SECONDS - stopped)) s" | tee -a "$OUT/faults.txt"
}

sqlite_rows() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM calls").fetchone()[0])' "$1"; }

check_postgres() {
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [[ $EUID -ne 0 || -z $PGBIN ]] || ! id postgres >/dev/null 2>&1; then
    echo "postgres: skipped (needs root and PostgreSQL's binaries under /usr/lib/postgresql)"; return
  fi
  mkdir -p "$WORK/pg" && chown postgres "$WORK" "$WORK/pg"
  su postgres -c "$PGBIN/initdb -D $WORK/pg -A trust -U postgres" >/dev/null
  local ctl="$PGBIN/pg_ctl -D $WORK/pg -o '-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1' -l $WORK/pg/log -w"
  su postgres -c "$ctl start" >/dev/null
  serve "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  load 60
  sleep 15; su postgres -c "$ctl -m fast stop" >/dev/null; echo "postgres: stopped at 15 s"
  sleep 20; su postgres -c "$ctl start" >/dev/null; echo "postgres: started at 35 s"
  wait "$loader"
  finish "postgres stopped for 20 s of a 60 s load" \
    "psql -h 127.0.0.1 -p $PG_PORT -U postgres -tAc 'SELECT count(*) FROM calls'"
  su postgres -c "$ctl -m fast stop" >/dev/null
}

# A small tmpfs of its own for the SQLite file, so that it can be made read-only or full.
mount_small() {
  local dir="$WORK/mnt-$1"
  mkdir -p "$dir" && mount -t tmpfs -o "size=$2" tmpfs "$dir"
  echo "$dir"
}

check_readonly() {
  # A file the service may not write (root's, read-only; the service run as nobody, as root
  # would write it anyway). A running file system cannot be made read-only under SQLite's open
  # files (mount refuses: busy), so this is the start: the service must refuse to run with a
  # clear message, not serve calls it cannot record.
  if [[ $EUID -ne 0 ]] || ! id nobody >/dev/null 2>&1; then
    echo "readonly: skipped (needs root, to run the service as nobody)"; return
  fi
  mkdir -p "$WORK/ro" && chmod 755 "$WORK" "$WORK/ro"
  python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("CREATE TABLE t (x)")' "$WORK/ro/ledger.db"
  chmod 444 "$WORK/ro/ledger.db"
  local status=0
  timeout 20 setpriv --reuid=nobody --regid=nogroup --clear-groups env OPENAI_API_KEY=bench \
    LLMRPC_DATABASE_URL="sqlite://$WORK/ro/ledger.db" "$B" serve --addr "$SERVICE" \
    2>"$WORK/readonly.log" || status=$?
  echo "SQLite file read-only at start: exit status $status, $(grep -o 'llmrpc: ledger.*' "$WORK/readonly.log" | head -1)" \
    | tee -a "$OUT/faults.txt"
}

check_full() {
  if [[ $EUID -ne 0 ]]; then echo "full: skipped (needs root to mount)"; return; fi
  local dir; dir=$(mount_small full 64m)
  serve "sqlite://$dir/ledger.db"
  load 40
  sleep 10; dd if=/dev/zero of="$dir/filler" bs=64k 2>/dev/null || true; echo "full: disk full at 10 s"
  sleep 15; rm -f "$dir/filler"; echo "full: space freed at 25 s"
  wait "$loader"
  finish "SQLite's disk full for 15 s of a 40 s load" "sqlite_rows $dir/ledger.db"
}

check_otlp() {
  # Nothing listens on the collector's port: every export fails.
  serve "sqlite://$WORK/otlp.db" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9 OTEL_BSP_SCHEDULE_DELAY=100
  load 20
  wait "$loader"
  finish "OTLP collector down for a 20 s load" "sqlite_rows $WORK/otlp.db"
}

: > "$OUT/faults.txt"
for check in "${@:-postgres readonly full otlp}"; do
  for c in $check; do "check_$c"; done
done
