-- Notifications the host sends about records (assigned to you, a deal moved, you
-- were mentioned) link to the record; `outbox_cursors` is how far a host consumer of
-- the event outbox has read (the notifier starts at the present, not at history).
ALTER TABLE notifications ADD COLUMN link TEXT;
CREATE TABLE outbox_cursors (
    consumer TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
INSERT INTO outbox_cursors (consumer, last_seq)
SELECT 'notifications', COALESCE(MAX(seq), 0) FROM outbox;
