-- Durable callbacks plugins schedule (`crm:plugin/jobs`), and the identity plugins
-- act as when no user is behind the call (jobs, public routes).

-- `status` is `scheduled` until the job ran (then the row is gone) or failed every
-- attempt (`failed`, kept for an admin to see). A host holds the lease while it runs
-- the job, so two hosts never run it at once.
CREATE TABLE plugin_jobs (
    id          TEXT PRIMARY KEY,
    plugin_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    run_at      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL DEFAULT 'scheduled',
    last_error  TEXT,
    lease_owner TEXT,
    lease_until TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX plugin_jobs_due ON plugin_jobs(status, run_at);
CREATE INDEX plugin_jobs_plugin ON plugin_jobs(plugin_id, run_at);

-- A plugin's own identity is the user `plugin:<id>` holding this role in each
-- department where the plugin is enabled; its grants narrow it further.
INSERT INTO roles (name, label, description, builtin, permissions, fields, created_at, updated_at) VALUES
('plugin', 'Plugin', 'The identity of a plugin in the departments where it is enabled (its grants narrow it further); not for people.', 1,
 '{"*":{"read":"department","create":"department","update":"department"}}', '{}',
 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

-- Plugins enabled before identities existed get theirs now.
INSERT INTO users (id, email, name, password_hash, is_admin, active, created_at, updated_at)
SELECT 'plugin:' || p.id, p.id || '@plugins.invalid', 'Plugin ' || p.id, '!', 0, 1, p.installed_at, p.installed_at
FROM plugins p WHERE EXISTS (SELECT 1 FROM plugin_departments d WHERE d.plugin_id = p.id);
INSERT INTO memberships (user_id, department_id, role, created_at)
SELECT 'plugin:' || plugin_id, department_id, 'plugin', enabled_at FROM plugin_departments;
