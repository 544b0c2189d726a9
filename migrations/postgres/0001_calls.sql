-- The call ledger: one row per call. Times are unix milliseconds (UTC), so that ranges and
-- pruning compare integers and both backends store the same values.
CREATE TABLE IF NOT EXISTS calls (
    id                BIGSERIAL        PRIMARY KEY,
    trace_id          TEXT             NOT NULL,
    span_id           TEXT             NOT NULL,
    source_agent      TEXT,
    target_agent      TEXT,
    session_id        TEXT,
    conversation_id   TEXT,
    method            TEXT             NOT NULL,
    requested_model   TEXT             NOT NULL,
    provider          TEXT,
    model             TEXT,
    status            TEXT             NOT NULL,
    error_message     TEXT,
    attempts          JSONB            NOT NULL DEFAULT '[]'::jsonb,
    latency_ms        BIGINT           NOT NULL,
    ttft_ms           BIGINT,
    prompt_tokens     BIGINT           NOT NULL DEFAULT 0,
    completion_tokens BIGINT           NOT NULL DEFAULT 0,
    total_tokens      BIGINT           NOT NULL DEFAULT 0,
    cost_usd          DOUBLE PRECISION NOT NULL DEFAULT 0,
    metadata          JSONB,
    started_at        BIGINT           NOT NULL,
    finished_at       BIGINT           NOT NULL
);

CREATE INDEX IF NOT EXISTS calls_trace_id ON calls (trace_id, started_at);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
