-- Which commands of a comment already ran, so that editing a comment runs
-- only the commands that are new. `fingerprint` is the command as parsed
-- (with its position among equal commands); `job_id` lets the job that
-- claimed it claim it again when it is retried.
CREATE TABLE command_runs (
    comment_id  INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (comment_id, fingerprint)
);
