-- One row per review run of a pull request: what was reviewed (head SHA,
-- and the SHA an incremental review compared from), the check run it
-- reports on, the GitHub review it posted and the fingerprints of the
-- inline comments in it. `job_id` is unique: a retried job finds its own
-- run again, so a crash between posting and recording posts nothing twice.
-- `state`: running, posting (the review's POST may have happened), done,
-- skipped, cancelled (superseded by a newer run), failed.
CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    repo          TEXT NOT NULL,
    number        INTEGER NOT NULL,
    head_sha      TEXT NOT NULL,
    job_id        INTEGER NOT NULL UNIQUE,
    trigger       TEXT NOT NULL,
    state         TEXT NOT NULL,
    base_sha      TEXT,
    check_run_id  INTEGER,
    review_id     INTEGER,
    fingerprints  TEXT NOT NULL DEFAULT '',
    detail        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX reviews_pull ON reviews (repo, number, id);
CREATE INDEX reviews_updated ON reviews (updated_at);
