-- ops.trace finds a trace's calls by a 64-bit hash of the trace id (computed by the service,
-- compared together with trace_id itself) instead of by the id's text. Trace ids are random, so
-- each new row lands on its own page of a trace index: an index of 8-byte keys has a quarter of
-- the pages of one of 32-character ids, and a batch of rows rewrites that many fewer of them.
-- The service gives rows written before this migration their key before migration 3 indexes
-- it; from then on every row has one (SQLite cannot add a NOT NULL column without a default).
ALTER TABLE calls ADD COLUMN trace_key INTEGER;
DROP INDEX IF EXISTS calls_trace_id;
