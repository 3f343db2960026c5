-- Saved reports: a named aggregate over one object, run with the viewer's rights.
CREATE TABLE reports (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    object     TEXT NOT NULL,
    -- A list's filters and quick search, as a query string.
    filter     TEXT NOT NULL,
    -- JSON arrays: up to two group keys; measures as `count` or `sum:<field>`.
    group_by   TEXT NOT NULL,
    measures   TEXT NOT NULL,
    chart      TEXT NOT NULL,
    -- 1: every signed-in user may open it.
    shared     INTEGER NOT NULL DEFAULT 0,
    owner_id   TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX reports_by_name ON reports (name, id);
CREATE INDEX reports_by_owner ON reports (owner_id);
