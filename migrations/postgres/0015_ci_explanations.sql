-- Failed checks the bot explained on a pull request's head (see
-- migrations/sqlite).
CREATE TABLE ci_explanations (
    id           BIGSERIAL PRIMARY KEY,
    repo         TEXT NOT NULL,
    number       BIGINT NOT NULL,
    head_sha     TEXT NOT NULL,
    checks       TEXT NOT NULL,
    explanation  TEXT NOT NULL,
    job_id       BIGINT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX ci_explanations_head ON ci_explanations (repo, head_sha, id);
CREATE INDEX ci_explanations_at ON ci_explanations (at);
-- A hash of what a sticky comment last said, so that saying the same
-- again (a wait that polls, a run that changes nothing) edits nothing.
ALTER TABLE pull_comments ADD COLUMN body_hash TEXT;
