-- `/agentic cancel` (see migrations/sqlite).
ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE plans ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE plans ADD COLUMN apply_job_id BIGINT;
