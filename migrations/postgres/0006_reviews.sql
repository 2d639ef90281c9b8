-- One row per review run of a pull request (see migrations/sqlite).
CREATE TABLE reviews (
    id            BIGSERIAL PRIMARY KEY,
    repo          TEXT NOT NULL,
    number        BIGINT NOT NULL,
    head_sha      TEXT NOT NULL,
    job_id        BIGINT NOT NULL UNIQUE,
    trigger       TEXT NOT NULL,
    state         TEXT NOT NULL,
    base_sha      TEXT,
    check_run_id  BIGINT,
    review_id     BIGINT,
    fingerprints  TEXT NOT NULL DEFAULT '',
    detail        TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX reviews_pull ON reviews (repo, number, id);
CREATE INDEX reviews_updated ON reviews (updated_at);
