-- Which repository (GitHub's id) each name belonged to when the bot first
-- gave it AWS: a name that later belongs to another repository (the first
-- renamed, transferred or deleted, and the name taken) gets no AWS until
-- the operator says so (`agentic repos forget owner/name`). Names are
-- stored lower-cased, as GitHub compares them.
CREATE TABLE repo_names (
    name TEXT PRIMARY KEY,
    repo_id BIGINT NOT NULL,
    bound_at BIGINT NOT NULL
);
