-- The durable state of agentic. Times are Unix milliseconds (UTC).

-- One row per X-GitHub-Delivery. The primary key is the dedupe key: GitHub
-- redelivers with the same id.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY NOT NULL,
    event           TEXT NOT NULL,
    action          TEXT,
    installation_id INTEGER,
    repo            TEXT,
    -- 'accepted' (jobs were queued) or 'ignored' (nothing to do; see reason)
    outcome         TEXT NOT NULL,
    reason          TEXT,
    received_at     INTEGER NOT NULL
);

-- Work to do. A job is leased, never locked forever: a worker that dies
-- leaves a lease that runs out, and the job runs again.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT NOT NULL REFERENCES deliveries(id),
    kind         TEXT NOT NULL,
    -- 'owner/name#number', or 'installation/ID'
    subject      TEXT NOT NULL,
    -- our own parsed event (JSON), not GitHub's payload
    payload      TEXT NOT NULL,
    -- queued | running | done | dead
    state        TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    INTEGER NOT NULL,
    lease_token  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
-- The lease query takes the head of each of these two orders.
CREATE INDEX jobs_ready ON jobs (state, run_after, id);
CREATE INDEX jobs_leases ON jobs (state, lease_until);
CREATE INDEX jobs_delivery ON jobs (delivery_id);

-- What a job posted to GitHub, so that a retried job edits instead of
-- posting twice. `key` names the output within the job ('status-comment').
CREATE TABLE outputs (
    job_id      INTEGER NOT NULL REFERENCES jobs(id),
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    github_id   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (job_id, key)
);

-- Every tool call, approval, apply, refusal and job transition that matters.
-- `detail` is JSON that has passed the redactor.
CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    job_id       INTEGER,
    delivery_id  TEXT,
    actor        TEXT,
    action       TEXT NOT NULL,
    detail       TEXT
);
CREATE INDEX audit_job ON audit (job_id);
