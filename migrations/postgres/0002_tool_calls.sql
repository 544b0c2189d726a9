-- How many tool calls the model asked for in a call's answer: agents' tool loops show in
-- ops.trace. Rows from before read 0 (a constant default rewrites no row). Only the count: a
-- call's arguments and results are content, never stored.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS tool_calls BIGINT NOT NULL DEFAULT 0;
