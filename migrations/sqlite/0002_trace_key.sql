-- ops.trace finds a trace's calls by a 64-bit hash of the trace id (computed by the service,
-- compared together with trace_id itself) instead of by the id's text. Trace ids are random, so
-- each new row lands on its own page of a trace index: an index of 8-byte keys has a quarter of
-- the pages of one of 32-character ids, and a batch of rows rewrites that many fewer of them.
-- Rows written before this migration get their key from the service at start, then it is NOT
-- NULL in practice (SQLite cannot add a NOT NULL column without a constant default).
ALTER TABLE calls ADD COLUMN trace_key INTEGER;
CREATE INDEX IF NOT EXISTS calls_trace_key ON calls (trace_key);
DROP INDEX IF EXISTS calls_trace_id;
