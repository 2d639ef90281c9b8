-- Infrastructure plans: the exact steps (JSON) and their hash, who asked,
-- the pull request's head they were made at, when they expire, and their
-- status (proposed, applying, applied, failed, cancelled).
CREATE TABLE plans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repo        TEXT NOT NULL,
    number      INTEGER NOT NULL,
    requester   TEXT NOT NULL,
    head_sha    TEXT,
    steps       TEXT NOT NULL,
    hash        TEXT NOT NULL,
    status      TEXT NOT NULL,
    job_id      INTEGER NOT NULL UNIQUE,
    check_run_id INTEGER,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX plans_thread ON plans (repo, number, id);

-- One approval per person and plan, bound to the hash and head it saw.
CREATE TABLE plan_approvals (
    plan_id     INTEGER NOT NULL,
    approver    TEXT NOT NULL,
    role        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    head_sha    TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (plan_id, approver)
);

-- What each step of an apply did, written before the next step starts:
-- `running` (it may have happened), `done` or `failed`, with the result.
CREATE TABLE plan_steps (
    plan_id     INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    state       TEXT NOT NULL,
    result      TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (plan_id, step)
);

-- A lock per resource while a plan is applied: two plans that touch the
-- same instance cannot run at once. Released when the apply ends.
CREATE TABLE plan_locks (
    resource    TEXT PRIMARY KEY NOT NULL,
    plan_id     INTEGER NOT NULL
);
