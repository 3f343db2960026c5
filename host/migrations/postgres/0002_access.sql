-- Access control: departments, roles, memberships, record shares and denials.
-- The rules themselves are evaluated by casbin (host/src/access/model.conf); these
-- tables are where its policy lives.

-- Departments form a tree; the root (a fixed id) is the whole organisation.
CREATE TABLE departments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    parent_id   TEXT REFERENCES departments(id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
INSERT INTO departments (id, name, parent_id, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'Organisation', NULL,
        '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

-- A role: per object, each action with a scope; per field, hidden / read / write.
-- `permissions` is {"object": {"action": "scope"}} ("*" is every object);
-- `fields` is {"object": {"field": "hidden|read|write"}}.
CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    builtin     INTEGER NOT NULL DEFAULT 0,
    permissions TEXT NOT NULL,
    fields      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
INSERT INTO roles (name, label, description, builtin, permissions, fields, created_at, updated_at) VALUES
('org_admin', 'Organisation admin', 'Everything, everywhere, including users, departments, roles and metadata.', 1,
 '{"*":{"read":"all","create":"all","update":"all","delete":"all","export":"all","admin":"all"},"org":{"admin":"all"}}', '{}',
 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
('department_admin', 'Department admin', 'Every record of the department and its sub-departments; manages their members.', 1,
 '{"*":{"read":"subtree","create":"subtree","update":"subtree","delete":"subtree","export":"subtree","admin":"subtree"},"org":{"admin":"subtree"}}', '{}',
 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
('manager', 'Manager', 'Reads and edits every record of the department and its sub-departments; transfers and shares them.', 1,
 '{"*":{"read":"subtree","create":"subtree","update":"subtree","delete":"subtree","export":"subtree","admin":"subtree"}}', '{}',
 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
('member', 'Member', 'Reads the department''s records; creates records; edits and deletes its own.', 1,
 '{"*":{"read":"department","create":"department","update":"own","delete":"own"}}', '{}',
 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
('read_only', 'Read-only', 'Reads the department''s records.', 1,
 '{"*":{"read":"department"}}', '{}',
 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
('partner', 'Partner', 'Sees only the records shared with it.', 1,
 '{}', '{}',
 '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

-- A user's role in a department (one role per department).
CREATE TABLE memberships (
    user_id       TEXT NOT NULL REFERENCES users(id),
    department_id TEXT NOT NULL REFERENCES departments(id),
    role          TEXT NOT NULL REFERENCES roles(name),
    created_at    TEXT NOT NULL,
    PRIMARY KEY (user_id, department_id)
);
CREATE INDEX memberships_department ON memberships(department_id);

-- Existing admins become organisation admins of the root department.
INSERT INTO memberships (user_id, department_id, role, created_at)
SELECT id, '00000000-0000-0000-0000-000000000001', 'org_admin', created_at FROM users WHERE is_admin = 1;
INSERT INTO memberships (user_id, department_id, role, created_at)
SELECT id, '00000000-0000-0000-0000-000000000001', 'member', created_at FROM users WHERE is_admin = 0;

-- A record shared with one user or one department, for reading or writing.
CREATE TABLE record_shares (
    id            TEXT PRIMARY KEY,
    object        TEXT NOT NULL,
    record_id     TEXT NOT NULL,
    user_id       TEXT REFERENCES users(id),
    department_id TEXT REFERENCES departments(id),
    access        TEXT NOT NULL,
    created_by    TEXT,
    created_at    TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (department_id IS NULL))
);
CREATE UNIQUE INDEX record_shares_user ON record_shares(user_id, record_id);
CREATE UNIQUE INDEX record_shares_department ON record_shares(department_id, record_id);
CREATE INDEX record_shares_record ON record_shares(record_id);

-- Every refused access: who tried what on which record, and why.
CREATE TABLE access_denials (
    id         TEXT PRIMARY KEY,
    actor_id   TEXT,
    action     TEXT NOT NULL,
    object     TEXT,
    record_id  TEXT,
    reason     TEXT NOT NULL,
    at         TEXT NOT NULL
);

-- Bumped on every change of roles, memberships or departments, so every host
-- process reloads its enforcer.
CREATE TABLE policy_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO policy_version (id, version) VALUES (1, 0);

-- Record scope is enforced in SQL: these keep department and owner lists fast.
CREATE INDEX records_object_department ON records(object, department_id, id);
CREATE INDEX records_object_owner ON records(object, owner_id, id);

-- Records created before departments existed belong to the organisation.
UPDATE records SET department_id = '00000000-0000-0000-0000-000000000001' WHERE department_id IS NULL;
