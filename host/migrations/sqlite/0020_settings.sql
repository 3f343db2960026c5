-- Organisation-wide settings an admin changes, one JSON value per name (`kpis`: what
-- the KPI figures count).
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT
);
