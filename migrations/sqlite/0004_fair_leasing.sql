-- Workers are shared fairly between installations: each job knows its
-- installation, the lease query takes the head of each installation's queue
-- in turn (round robin by `installation_turns`), and no installation runs
-- more than its cap of jobs at once.
ALTER TABLE jobs ADD COLUMN installation_id INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET installation_id = COALESCE(
    (SELECT d.installation_id FROM deliveries d WHERE d.id = jobs.delivery_id), 0);
CREATE INDEX jobs_fair ON jobs (state, installation_id, run_after, id);

-- When each installation was last served, as a counter that only grows.
CREATE TABLE installation_turns (
    installation_id INTEGER PRIMARY KEY NOT NULL,
    last_turn       INTEGER NOT NULL
);

-- Tells a first claim of a command from the same job claiming it again on
-- a retry, so that only first runs count against the rate limits.
ALTER TABLE command_runs ADD COLUMN claim_token TEXT;
