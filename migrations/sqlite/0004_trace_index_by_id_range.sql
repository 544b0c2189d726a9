-- The trace index again, led by the row's id range (ids 0–4095, 4096–8191, …) and then the trace
-- key. Trace keys are random, so in an index of the key alone every batch the writer commits
-- rewrites pages all over it: at 100,000 rows about 4 KiB of index per row written, growing with
-- the table. Led by the id range, a batch's entries land on the few pages of the newest range.
-- A lookup pays instead: one index search per range that holds rows (see `SqliteStore::trace`),
-- about 25 ms at ten million rows, growing with the rows kept.
DROP INDEX IF EXISTS calls_trace_key;
CREATE INDEX IF NOT EXISTS calls_trace ON calls (id >> 12, trace_key);
-- Rows without a trace key, which the service looks for at every start (`key_unkeyed_rows`):
-- the index of the key alone answered that, this one is empty and costs nothing to keep.
CREATE INDEX IF NOT EXISTS calls_unkeyed ON calls (trace_key) WHERE trace_key IS NULL;
