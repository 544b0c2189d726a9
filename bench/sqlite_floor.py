#!/usr/bin/env python3
"""What SQLite itself costs per ledger row on this machine, independent of llmrpc's code.

Inserts rows shaped like the ledger's (the schema of migrations/sqlite/, random 32-hex trace
ids, one attempt as JSON) into a file that already holds 50,000, in transactions of 3,000 rows
(the writer's batch at about 12,000 calls/s), in WAL mode with synchronous=NORMAL like the
service. Reports CPU microseconds per row for the shipped layout and for the alternatives it
was chosen over. Python's own per-row work is included in every figure alike; the differences
are SQLite's.

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
for line in (TEXT_INDEX, KEY_INDEX, DROP_TEXT_INDEX):
    assert line in SCHEMA, f"the schema changed: update this script ({line})"
# The layout before migration 2: the trace index on the id's text.
TEXT_SCHEMA = SCHEMA.replace(KEY_INDEX, "").replace(DROP_TEXT_INDEX, "")
NO_TRACE_INDEX = SCHEMA.replace(KEY_INDEX, "")

COLUMNS = (
    "trace_id, span_id, source_agent, target_agent, session_id, conversation_id, method, "
    "requested_model, provider, model, status, error_message, attempts, latency_ms, ttft_ms, "
    "prompt_tokens, completion_tokens, total_tokens, cost_usd, metadata, started_at, finished_at, "
    "trace_key"
)
INSERT = f"INSERT INTO calls ({COLUMNS}) VALUES ({', '.join('?' * 23)})"
BEFORE, ROWS, BATCH = 50_000, 150_000, 3_000
ATTEMPTS = json.dumps([{"provider": "openai", "model": "gpt-4o-mini", "status": "ok",
                        "http_status": 200, "latency_ms": 1, "started_at": 1795255200000}])


def rows(count, first_ms):
    # The service keys rows by FNV-1a; any well-mixed 64-bit key costs SQLite the same.
    for i in range(count):
        trace_id = uuid.uuid4().hex
        at = first_ms + i // 12
        yield (trace_id, f"{random.getrandbits(64):016x}", None, None, None, None,
               "llm.complete", "gpt-4o-mini", "openai", "gpt-4o-mini", "ok", None, ATTEMPTS, 1,
               None, 9, 3, 12, 0.0000032, None, at, at + 1, random.getrandbits(64) - (1 << 63))


DATA = list(rows(ROWS, 1795255200000))


def cpu_us_per_row(schema, page_size):
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "floor.db"), isolation_level=None)
        db.execute(f"PRAGMA page_size={page_size}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        db.execute("BEGIN")
        db.executemany(INSERT, rows(BEFORE, 1795255200000 - BEFORE))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        start = time.process_time()
        for i in range(0, ROWS, BATCH):
            db.execute("BEGIN")
            db.executemany(INSERT, DATA[i:i + BATCH])
            db.execute("COMMIT")
        spent = time.process_time() - start
        db.close()
        return spent * 1e6 / ROWS


print(f"SQLite {sqlite3.sqlite_version}, {ROWS} rows in transactions of {BATCH}, "
      f"{BEFORE} rows already there; CPU µs per row, best of 3")
for name, schema, page_size in [
    ("as shipped: trace_key index, 16 KiB pages", SCHEMA, 16384),
    ("trace_key index, 4 KiB pages", SCHEMA, 4096),
    ("before: trace_id text index, 4 KiB pages", TEXT_SCHEMA, 4096),
    ("no trace index (ops.trace would scan), 16 KiB", NO_TRACE_INDEX, 16384),
]:
    best = min(cpu_us_per_row(schema, page_size) for _ in range(3))
    print(f"{name:48s} {best:5.1f}")
