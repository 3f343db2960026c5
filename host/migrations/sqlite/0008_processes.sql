-- The process engine (host/src/process): versioned definitions, durable instances,
-- the tokens that mark where each path of an instance stands, and its history.

CREATE TABLE process_definitions (
    id           TEXT PRIMARY KEY,
    process_key  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,
    published_by TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (process_key, version)
);

CREATE TABLE process_instances (
    id            TEXT PRIMARY KEY,
    definition_id TEXT NOT NULL REFERENCES process_definitions(id),
    process_key   TEXT NOT NULL,
    version       INTEGER NOT NULL,
    -- running, completed, incident, cancelled
    status        TEXT NOT NULL,
    variables     TEXT NOT NULL,
    record_object TEXT,
    record_id     TEXT,
    department_id TEXT,
    started_by    TEXT NOT NULL,
    -- What started it, for starts that must happen once: `event:<seq>` for a
    -- record trigger, `schedule:<time>` for a schedule.
    trigger_key   TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    ended_at      TEXT
);
CREATE INDEX process_instances_started_by ON process_instances(started_by, id);
CREATE INDEX process_instances_status ON process_instances(status, id);
CREATE INDEX process_instances_record ON process_instances(record_object, record_id);
CREATE UNIQUE INDEX process_instances_trigger ON process_instances(process_key, trigger_key);

-- A token is one path of an instance standing at a node. Workers claim ready,
-- due tokens under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), run the node
-- and, in one transaction, mark the token done and create the next ones.
CREATE TABLE process_tokens (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES process_instances(id),
    node        TEXT NOT NULL,
    -- The flow it arrived by (a parallel join counts them).
    via         TEXT,
    -- ready, waiting (a person's task), joined (at a parallel join), done,
    -- incident, cancelled
    status      TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    -- 1 at a timer (or boundary timer): claimed before other due tokens, so timers
    -- fire on time even behind a backlog.
    timer       INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    lease_owner TEXT,
    lease_until TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX process_tokens_due ON process_tokens(status, timer, due_at);
CREATE INDEX process_tokens_instance ON process_tokens(instance_id, status);

CREATE TABLE process_history (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES process_instances(id),
    node        TEXT,
    event       TEXT NOT NULL,
    detail      TEXT NOT NULL,
    actor       TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX process_history_instance ON process_history(instance_id, at, id);

-- A person's part in a process: open until completed with an outcome. Assigned to
-- a user, to holders of a role in a department, or to a department's members.
CREATE TABLE process_tasks (
    id              TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL REFERENCES process_instances(id),
    token_id        TEXT NOT NULL REFERENCES process_tokens(id),
    node            TEXT NOT NULL,
    name            TEXT NOT NULL,
    assignee_user   TEXT,
    assignee_role   TEXT,
    department_id   TEXT,
    -- open, completed, cancelled
    status          TEXT NOT NULL,
    claimed_by      TEXT,
    outcome         TEXT,
    due_at          TEXT,
    completed_by    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX process_tasks_open ON process_tasks(status, assignee_user, id);
CREATE INDEX process_tasks_instance ON process_tasks(instance_id);

-- How far record triggers have read the outbox; a host holds the lease while it
-- reads, so two hosts never start the same instance.
CREATE TABLE process_trigger_cursor (
    name        TEXT PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT
);

-- When each scheduled process starts next.
CREATE TABLE process_schedules (
    process_key TEXT PRIMARY KEY,
    next_at     TEXT NOT NULL
);
