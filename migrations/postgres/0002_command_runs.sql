-- Which commands of a comment already ran (see migrations/sqlite).
CREATE TABLE command_runs (
    comment_id  BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (comment_id, fingerprint)
);
