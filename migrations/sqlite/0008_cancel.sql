-- `/agentic cancel`: who asked a queued or running job to stop, read by the
-- worker running it (on any replica); and who asked an apply to stop after
-- the step it is on.
ALTER TABLE jobs ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE plans ADD COLUMN cancel_requested_by TEXT;
-- The job applying a plan: only it may go on with the apply, unless it
-- ended without finishing (then another apply or a cancel takes over).
ALTER TABLE plans ADD COLUMN apply_job_id INTEGER;

-- `cancel` jobs are leased ahead of the queue: found without a scan.
CREATE INDEX jobs_queued_cancel ON jobs (run_after) WHERE state = 'queued' AND kind = 'cancel';
