-- Dashboards: a named set of saved reports (JSON array of ids), private or shared.
CREATE TABLE dashboards (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    reports    TEXT NOT NULL,
    shared     INTEGER NOT NULL DEFAULT 0,
    owner_id   TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX dashboards_by_name ON dashboards (name, id);
