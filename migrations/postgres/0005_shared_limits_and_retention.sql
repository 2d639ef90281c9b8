-- Rate limits that hold across replicas: one row per limited key with its
-- GCRA "theoretical arrival time" (ms since the epoch). A request is let
-- through, and the time moved on, in one conditional upsert.
CREATE TABLE rate_limits (
    key  TEXT PRIMARY KEY NOT NULL,
    tat  BIGINT NOT NULL
);

-- Retention reads the oldest finished jobs, deliveries and audit records.
CREATE INDEX jobs_finished_at ON jobs (finished_at);
CREATE INDEX deliveries_received ON deliveries (received_at);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX outputs_job ON outputs (job_id);
CREATE INDEX command_runs_job ON command_runs (job_id);
