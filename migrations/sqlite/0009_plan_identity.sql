-- People are compared by GitHub user id, never by login: a renamed account
-- is the same person, and a login given up may become someone else's.
-- A plan made before this has no requester id and cannot be applied
-- (plans live a day; ask for a new one).
ALTER TABLE plans ADD COLUMN requester_id INTEGER;
-- When the plan was shown on its thread, by GitHub's clock (ms since the
-- epoch, from the edit that showed it). `/agentic approve` without a plan
-- only approves a plan shown before the approving comment was written.
ALTER TABLE plans ADD COLUMN shown_at INTEGER;

-- One approval per person (by id) and plan. Approvals recorded by login
-- alone cannot name their person, so they are dropped: approve again.
DROP TABLE plan_approvals;
CREATE TABLE plan_approvals (
    plan_id     INTEGER NOT NULL,
    approver_id INTEGER NOT NULL,
    approver    TEXT NOT NULL,
    role        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    head_sha    TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (plan_id, approver_id)
);
