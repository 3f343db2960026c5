-- Users and their credentials. Emails are stored lower-cased.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Login sessions and API tokens; only a SHA-256 of the token is kept.
CREATE TABLE auth_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);
CREATE INDEX auth_tokens_user ON auth_tokens(user_id, kind);

-- Object metadata: object types and their fields (definition is the field as JSON).
CREATE TABLE object_types (
    name         TEXT PRIMARY KEY,
    label        TEXT NOT NULL,
    label_plural TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    standard     INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE TABLE object_fields (
    object     TEXT NOT NULL REFERENCES object_types(name),
    name       TEXT NOT NULL,
    position   INTEGER NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (object, name)
);
-- Bumped on every metadata change so every host process reloads its cache.
CREATE TABLE metadata_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO metadata_version (id, version) VALUES (1, 0);

-- Records of every object; field values live in the JSON column `data`.
CREATE TABLE records (
    id            TEXT PRIMARY KEY,
    object        TEXT NOT NULL REFERENCES object_types(name),
    version       BIGINT NOT NULL,
    owner_id      TEXT,
    department_id TEXT,
    created_by    TEXT,
    updated_by    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX records_object_id ON records(object, id);
CREATE INDEX records_object_updated ON records(object, updated_at, id);

-- Who changed what, when: written in the same transaction as the record.
CREATE TABLE audit_log (
    id             TEXT PRIMARY KEY,
    object         TEXT NOT NULL,
    record_id      TEXT NOT NULL,
    action         TEXT NOT NULL,
    actor_id       TEXT,
    record_version BIGINT,
    at             TEXT NOT NULL,
    changes        TEXT NOT NULL
);
CREATE INDEX audit_log_record ON audit_log(record_id, id);

-- Events for hooks, processes and webhooks, written with the change they describe.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    topic          TEXT NOT NULL,
    object         TEXT NOT NULL,
    record_id      TEXT NOT NULL,
    record_version BIGINT,
    actor_id       TEXT,
    payload        TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
