-- The operator's freeze switch (see migrations/sqlite).
CREATE TABLE apply_freeze (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
