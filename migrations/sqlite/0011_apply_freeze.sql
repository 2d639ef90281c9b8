-- The operator's freeze switch (`agentic freeze`): while its one row
-- exists, no plan is applied and a running apply pauses between steps.
-- Every replica reads it at each check, so it takes effect within seconds.
-- Named `apply_freeze`: FREEZE is a reserved word in PostgreSQL.
CREATE TABLE apply_freeze (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at INTEGER NOT NULL
);
