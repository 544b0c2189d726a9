-- The A2A task a call ran as (contract §9), so that GetTask finds it after the fact. Indexed
-- only where set: calls of the other surfaces pay nothing for it.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS task_id TEXT;
CREATE INDEX IF NOT EXISTS calls_task_id ON calls (task_id) WHERE task_id IS NOT NULL;
