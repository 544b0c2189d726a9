#!/usr/bin/env python3
"""What SQLite itself costs per ledger row on this machine, independent of llmrpc's code.

Inserts rows shaped like the ledger's (the schema of migrations/sqlite/, random 32-hex trace
ids, one attempt as JSON) into a file that already holds 50,000 or 1,000,000, in transactions of
3,000 rows (the writer's batch at about 12,000 calls/s) of INSERT statements of 256 rows each, in
WAL mode with synchronous=NORMAL, like the service. Reports CPU microseconds and bytes written per row for the shipped layout and for
the alternatives it was chosen over. Python's own per-row work is included in every figure
alike; the differences are SQLite's.

    python3 bench/sqlite_floor.py
"""
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "migrations/sqlite")
SCHEMA = "\n".join(open(os.path.join(MIGRATIONS, name)).read()
                   for name in sorted(os.listdir(MIGRATIONS)))
TEXT_INDEX = "CREATE INDEX IF NOT EXISTS calls_trace_id ON calls (trace_id, started_at);"
KEY_INDEX = "CREATE INDEX IF NOT EXISTS calls_trace_key ON calls (trace_key);"
DROP_TEXT_INDEX = "DROP INDEX IF EXISTS calls_trace_id;"
DROP_KEY_INDEX = "DROP INDEX IF EXISTS calls_trace_key;"
RANGE_INDEX = "CREATE INDEX IF NOT EXISTS calls_trace ON calls (id >> 12, trace_key);"
for line in (TEXT_INDEX, KEY_INDEX, DROP_TEXT_INDEX, DROP_KEY_INDEX, RANGE_INDEX):
    assert line in SCHEMA, f"the schema changed: update this script ({line})"
# The layout of migrations 2 and 3: the trace index on the key alone.
KEY_SCHEMA = SCHEMA.replace(DROP_KEY_INDEX, "").replace(RANGE_INDEX, "")
# The layout before migration 2: the trace index on the id's text.
TEXT_SCHEMA = KEY_SCHEMA.replace(KEY_INDEX, "").replace(DROP_TEXT_INDEX, "")
NO_TRACE_INDEX = SCHEMA.replace(RANGE_INDEX, "")

COLUMNS = (
    "trace_id, span_id, source_agent, target_agent, session_id, conversation_id, method, "
    "requested_model, provider, model, status, error_message, attempts, latency_ms, ttft_ms, "
    "prompt_tokens, completion_tokens, total_tokens, cost_usd, tool_calls, metadata, started_at, "
    "finished_at, trace_key"
)
ROWS_PER_INSERT = 256
ROW = f"({', '.join('?' * 24)})"
# As the service writes: OR FAIL, which spares SQLite a statement journal (src/ledger/sqlite.rs).
INSERT = "INSERT OR FAIL INTO calls ({COLUMNS}) VALUES {rows}"
ABORT_INSERT = "INSERT INTO calls ({COLUMNS}) VALUES {rows}"
ROWS, BATCH = 150_000, 3_000
ATTEMPTS = json.dumps([{"provider": "openai", "model": "gpt-4o-mini", "status": "ok",
                        "http_status": 200, "latency_ms": 1, "started_at": 1795255200000}])


def rows(count, first_ms):
    # The service keys rows by FNV-1a; any well-mixed 64-bit key costs SQLite the same.
    for i in range(count):
        trace_id = uuid.uuid4().hex
        at = first_ms + i // 12
        yield (trace_id, f"{random.getrandbits(64):016x}", None, None, None, None,
               "llm.complete", "gpt-4o-mini", "openai", "gpt-4o-mini", "ok", None, ATTEMPTS, 1,
               None, 9, 3, 12, 0.0000032, 0, None, at, at + 1,
               random.getrandbits(64) - (1 << 63))


DATA = list(rows(ROWS, 1795255200000))


def insert(db, statement, rows):
    for i in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[i:i + ROWS_PER_INSERT]
        sql = statement.format(COLUMNS=COLUMNS, rows=", ".join([ROW] * len(chunk)))
        db.execute(sql, [value for row in chunk for value in row])


def cost_per_row(schema, page_size, before, statement=INSERT):
    """CPU µs and bytes written (WAL and checkpoints) per row."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "floor.db"), isolation_level=None)
        db.execute(f"PRAGMA page_size={page_size}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        db.execute("BEGIN")
        insert(db, INSERT, list(rows(before, 1795255200000 - before)))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        written = written_bytes()
        start = time.process_time()
        for i in range(0, ROWS, BATCH):
            db.execute("BEGIN")
            insert(db, statement, DATA[i:i + BATCH])
            db.execute("COMMIT")
        spent = time.process_time() - start
        written = written_bytes() - written
        db.close()
        return spent * 1e6 / ROWS, written / ROWS


def written_bytes():
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))


print(f"SQLite {sqlite3.sqlite_version}, {ROWS} rows in transactions of {BATCH}; "
      "per row: CPU µs (best of 3), bytes written")
for name, schema, page_size, before, *statement in [
    ("as shipped: id-range trace index, 16 KiB pages", SCHEMA, 16384, 50_000),
    ("as shipped but INSERT without OR FAIL", SCHEMA, 16384, 50_000, ABORT_INSERT),
    ("as shipped, 1,000,000 rows already there", SCHEMA, 16384, 1_000_000),
    ("id-range trace index, 4 KiB pages", SCHEMA, 4096, 50_000),
    ("before: trace_key index (migrations 2-3)", KEY_SCHEMA, 16384, 50_000),
    ("the same, 1,000,000 rows already there", KEY_SCHEMA, 16384, 1_000_000),
    ("before that: trace_id text index, 4 KiB pages", TEXT_SCHEMA, 4096, 50_000),
    ("no trace index (ops.trace would scan)", NO_TRACE_INDEX, 16384, 50_000),
]:
    cpu, written = min(cost_per_row(schema, page_size, before, *statement) for _ in range(3))
    print(f"{name:48s} {cpu:5.1f} µs {written:7.0f} B")
