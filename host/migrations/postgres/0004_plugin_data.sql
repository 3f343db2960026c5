-- What plugins keep and produce: private key-value data, notifications for users,
-- the after-save delivery cursor per plugin, and deliveries that kept failing.

CREATE TABLE plugin_kv (
    plugin_id  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plugin_id, key)
);

-- Stored notifications; `source` is `plugin:<id>` or `system`.
CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    source     TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at    TEXT
);
CREATE INDEX notifications_user ON notifications(user_id, id);

-- How far each plugin's after-save hook has read the outbox; a host holds the lease
-- while it delivers, so two hosts never deliver the same plugin's events at once.
CREATE TABLE plugin_cursors (
    plugin_id   TEXT PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT
);

-- After-save deliveries that failed every attempt; an admin reads and replays them.
CREATE TABLE plugin_dead_letters (
    id         TEXT PRIMARY KEY,
    plugin_id  TEXT NOT NULL,
    event_seq  BIGINT NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX plugin_dead_letters_plugin ON plugin_dead_letters(plugin_id, id);

-- Set (with the reason) when a plugin kept failing and was switched off; cleared
-- when an admin resumes it.
ALTER TABLE plugins ADD COLUMN suspended TEXT;
