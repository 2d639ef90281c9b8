-- Fair leasing between installations and first-claim tokens (see
-- migrations/sqlite).
ALTER TABLE jobs ADD COLUMN installation_id BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET installation_id = COALESCE(
    (SELECT d.installation_id FROM deliveries d WHERE d.id = jobs.delivery_id), 0);
CREATE INDEX jobs_fair ON jobs (state, installation_id, run_after, id);

CREATE TABLE installation_turns (
    installation_id BIGINT PRIMARY KEY NOT NULL,
    last_turn       BIGINT NOT NULL
);

ALTER TABLE command_runs ADD COLUMN claim_token TEXT;
