-- `/agentic cancel` (see migrations/sqlite).
ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE plans ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE plans ADD COLUMN apply_job_id BIGINT;
CREATE INDEX jobs_queued_cancel ON jobs (run_after) WHERE state = 'queued' AND kind = 'cancel';
