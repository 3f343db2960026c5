-- Outgoing webhooks: subscriptions to record events, and every delivery with its
-- attempts (the delivery log). Deliveries are made from the event outbox: `last_seq`
-- is how far a webhook has taken events from it.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    -- JSON arrays: the event topics, and the objects (empty: every object).
    events     TEXT NOT NULL,
    objects    TEXT NOT NULL,
    secret     TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    -- Whose read rights decide which records and fields it is sent.
    owner_id   TEXT NOT NULL REFERENCES users(id),
    last_seq   BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL,
    event_seq       BIGINT NOT NULL,
    topic           TEXT NOT NULL,
    -- The exact body sent (the signature covers it).
    body            TEXT NOT NULL,
    -- pending, delivered, failed (gave up; replay sends it again)
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    response_status INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    delivered_at    TEXT,
    UNIQUE (webhook_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries(webhook_id, id);
