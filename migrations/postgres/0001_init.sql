-- The durable state of agentic (PostgreSQL). Kept in step with
-- migrations/sqlite: same versions, same tables and columns (a test
-- compares them). Times are Unix milliseconds (UTC).

-- One row per X-GitHub-Delivery. The primary key is the dedupe key: GitHub
-- redelivers with the same id.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY NOT NULL,
    event           TEXT NOT NULL,
    action          TEXT,
    installation_id BIGINT,
    repo            TEXT,
    -- 'accepted' (jobs were queued) or 'ignored' (nothing to do; see reason)
    outcome         TEXT NOT NULL,
    reason          TEXT,
    received_at     BIGINT NOT NULL
);

-- Work to do. A job is leased, never locked forever: a worker that dies
-- leaves a lease that runs out, and the job runs again.
CREATE TABLE jobs (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  TEXT NOT NULL REFERENCES deliveries(id),
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'queued',
    attempts     BIGINT NOT NULL DEFAULT 0,
    run_after    BIGINT NOT NULL,
    lease_token  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX jobs_ready ON jobs (state, run_after, id);
CREATE INDEX jobs_leases ON jobs (state, lease_until);
CREATE INDEX jobs_delivery ON jobs (delivery_id);

CREATE TABLE outputs (
    job_id      BIGINT NOT NULL REFERENCES jobs(id),
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    github_id   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (job_id, key)
);

CREATE TABLE audit (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    job_id       BIGINT,
    delivery_id  TEXT,
    actor        TEXT,
    action       TEXT NOT NULL,
    detail       TEXT
);
CREATE INDEX audit_job ON audit (job_id);
