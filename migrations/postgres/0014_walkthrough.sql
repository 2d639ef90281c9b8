-- The walkthrough of a pull request: what each review run made of it
-- (`reviews.walkthrough`: JSON, the overview and each file's change,
-- merged with the runs before), and the comments the bot keeps one of per
-- pull request and kind, edited across runs (`pull_comments`), and the
-- findings people dismissed in their threads ("this is intentional",
-- "false positive"), by fingerprint, never raised again on that pull
-- request (`dismissed_findings`).
-- `comment_id` is 0 while a post is in flight; a later run that finds 0,
-- or no row, looks for the comment's hidden marker before posting.
ALTER TABLE reviews ADD COLUMN walkthrough TEXT;
CREATE TABLE pull_comments (
    repo        TEXT NOT NULL,
    number      BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    comment_id  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (repo, number, kind)
);
CREATE TABLE dismissed_findings (
    repo         TEXT NOT NULL,
    number       BIGINT NOT NULL,
    fingerprint  TEXT NOT NULL,
    dismissed_by TEXT NOT NULL,
    at           BIGINT NOT NULL,
    PRIMARY KEY (repo, number, fingerprint)
);
