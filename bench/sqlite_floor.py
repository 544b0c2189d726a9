#!/usr/bin/env python3
"""What SQLite itself costs per ledger row on this machine, independent of llmrpc's code.

Inserts 100,000 rows shaped like the ledger's (the schema of migrations/sqlite/0001_calls.sql,
random 32-hex trace ids, one attempt as JSON) in transactions of 500 rows, as the writer does
at about 10,000 calls/s, in WAL mode with synchronous=NORMAL like the service. Reports CPU
microseconds per row with the shipped indexes, without the trace_id index and without any index.
Python's own per-row work is included in every figure alike; the differences are SQLite's.

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
SCHEMA = open(os.path.join(ROOT, "migrations/sqlite/0001_calls.sql")).read()
TRACE_INDEX = "CREATE INDEX IF NOT EXISTS calls_trace_id ON calls (trace_id, started_at);"
TIME_INDEX = "CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);"
assert TRACE_INDEX in SCHEMA and TIME_INDEX in SCHEMA, "the schema changed: update this script"

COLUMNS = (
    "trace_id, span_id, source_agent, target_agent, session_id, conversation_id, method, "
    "requested_model, provider, model, status, error_message, attempts, latency_ms, ttft_ms, "
    "prompt_tokens, completion_tokens, total_tokens, cost_usd, metadata, started_at, finished_at"
)
INSERT = f"INSERT INTO calls ({COLUMNS}) VALUES ({', '.join('?' * 22)})"
ROWS, BATCH = 100_000, 500
ATTEMPTS = json.dumps([{"provider": "openai", "model": "gpt-4o-mini", "status": "ok",
                        "http_status": 200, "latency_ms": 1, "started_at": 1795255200000}])
DATA = [(uuid.uuid4().hex, f"{random.getrandbits(64):016x}", None, None, None, None,
         "llm.complete", "gpt-4o-mini", "openai", "gpt-4o-mini", "ok", None, ATTEMPTS, 1, None,
         9, 3, 12, 0.0000032, None, 1795255200000 + i, 1795255200001 + i) for i in range(ROWS)]


def cpu_us_per_row(schema):
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "floor.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        start = time.process_time()
        for i in range(0, ROWS, BATCH):
            db.execute("BEGIN")
            db.executemany(INSERT, DATA[i:i + BATCH])
            db.execute("COMMIT")
        spent = time.process_time() - start
        db.close()
        return spent * 1e6 / ROWS


print(f"SQLite {sqlite3.sqlite_version}, {ROWS} rows in transactions of {BATCH}")
for name, schema in [
    ("as shipped (trace_id and started_at indexes)", SCHEMA),
    ("without the trace_id index", SCHEMA.replace(TRACE_INDEX, "")),
    ("without any index", SCHEMA.replace(TRACE_INDEX, "").replace(TIME_INDEX, "")),
]:
    print(f"{name:48s} {cpu_us_per_row(schema):5.1f} µs CPU per row")
