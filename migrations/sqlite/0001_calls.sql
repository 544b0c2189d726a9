-- The call ledger: one row per call. Attempts and metadata are JSON text; times are unix
-- milliseconds (UTC), so that ranges and pruning compare integers.
CREATE TABLE IF NOT EXISTS calls (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id          TEXT    NOT NULL,
    span_id           TEXT    NOT NULL,
    source_agent      TEXT,
    target_agent      TEXT,
    session_id        TEXT,
    conversation_id   TEXT,
    method            TEXT    NOT NULL,
    requested_model   TEXT    NOT NULL,
    provider          TEXT,
    model             TEXT,
    status            TEXT    NOT NULL,
    error_message     TEXT,
    attempts          TEXT    NOT NULL DEFAULT '[]',
    latency_ms        INTEGER NOT NULL,
    ttft_ms           INTEGER,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL    NOT NULL DEFAULT 0,
    metadata          TEXT,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS calls_trace_id ON calls (trace_id, started_at);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
