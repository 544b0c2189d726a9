-- Built after the service has keyed every older row (see 0002): an index built over existing
-- keys is sorted once, instead of taking each key as a random insert.
CREATE INDEX IF NOT EXISTS calls_trace_key ON calls (trace_key);
