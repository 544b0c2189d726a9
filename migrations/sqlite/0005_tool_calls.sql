-- How many tool calls the model asked for in a call's answer: agents' tool loops show in
-- ops.trace. Rows from before read 0 (the default is the schema's, so adding the column
-- rewrites no row). Only the count: a call's arguments and results are content, never stored.
ALTER TABLE calls ADD COLUMN tool_calls INTEGER NOT NULL DEFAULT 0;
