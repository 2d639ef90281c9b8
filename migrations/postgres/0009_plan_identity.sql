-- People are compared by GitHub user id (see migrations/sqlite).
ALTER TABLE plans ADD COLUMN requester_id BIGINT;
ALTER TABLE plans ADD COLUMN shown_at BIGINT;

DROP TABLE plan_approvals;
CREATE TABLE plan_approvals (
    plan_id     BIGINT NOT NULL,
    approver_id BIGINT NOT NULL,
    approver    TEXT NOT NULL,
    role        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    head_sha    TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (plan_id, approver_id)
);
