-- Infrastructure plans, their approvals and their applied steps (see
-- migrations/sqlite).
CREATE TABLE plans (
    id          BIGSERIAL PRIMARY KEY,
    repo        TEXT NOT NULL,
    number      BIGINT NOT NULL,
    requester   TEXT NOT NULL,
    head_sha    TEXT,
    steps       TEXT NOT NULL,
    hash        TEXT NOT NULL,
    status      TEXT NOT NULL,
    job_id      BIGINT NOT NULL UNIQUE,
    check_run_id BIGINT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX plans_thread ON plans (repo, number, id);

-- One approval per person and plan, bound to the hash and head it saw.
CREATE TABLE plan_approvals (
    plan_id     BIGINT NOT NULL,
    approver    TEXT NOT NULL,
    role        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    head_sha    TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (plan_id, approver)
);

-- What each step of an apply did, written before the next step starts:
-- `running` (it may have happened), `done` or `failed`, with the result.
CREATE TABLE plan_steps (
    plan_id     BIGINT NOT NULL,
    step        BIGINT NOT NULL,
    state       TEXT NOT NULL,
    result      TEXT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (plan_id, step)
);

-- A lock per resource while a plan is applied (see migrations/sqlite).
CREATE TABLE plan_locks (
    resource    TEXT PRIMARY KEY NOT NULL,
    plan_id     BIGINT NOT NULL
);
