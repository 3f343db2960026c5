-- Installed plugins: the manifest (JSON), the component itself, and whether an admin
-- approved what the manifest asks for.
CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    manifest     TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    approved     INTEGER NOT NULL DEFAULT 0,
    component    BYTEA NOT NULL,
    installed_at TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Departments where a plugin's hooks run.
CREATE TABLE plugin_departments (
    plugin_id     TEXT NOT NULL REFERENCES plugins(id),
    department_id TEXT NOT NULL REFERENCES departments(id),
    enabled_at    TEXT NOT NULL,
    PRIMARY KEY (plugin_id, department_id)
);
