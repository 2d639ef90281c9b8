-- Failed checks the bot explained on a pull request's head: one row per
-- explanation, with the check runs it covers (`checks`: JSON, each
-- `{id, name, conclusion}`) and the model's text. The head's comment
-- (`pull_comments`, kind `ci:<head sha>`) is rendered from these rows, so
-- a check already explained is never sent to the model again, and a later
-- failure on the same head adds to the same comment.
CREATE TABLE ci_explanations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    repo         TEXT NOT NULL,
    number       INTEGER NOT NULL,
    head_sha     TEXT NOT NULL,
    checks       TEXT NOT NULL,
    explanation  TEXT NOT NULL,
    job_id       INTEGER NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX ci_explanations_head ON ci_explanations (repo, head_sha, id);
CREATE INDEX ci_explanations_at ON ci_explanations (at);
-- A hash of what a sticky comment last said, so that saying the same
-- again (a wait that polls, a run that changes nothing) edits nothing.
ALTER TABLE pull_comments ADD COLUMN body_hash TEXT;
