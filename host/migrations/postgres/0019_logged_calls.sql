-- Call logging: one row per telephony call_id, claimed before its activity is written,
-- so retries of one call that arrive together log it once (records.data cannot carry
-- a unique constraint the admin may not remove). activity_id is NULL while the call is
-- being logged; a claim older than a few seconds without it was left by a host that
-- stopped, and is taken over.
CREATE TABLE logged_calls (
    call_id     TEXT PRIMARY KEY,
    activity_id TEXT,
    claimed_at  TEXT NOT NULL
);

-- Calls logged before this table: the first activity of each call_id stands for it
-- (later duplicates, if concurrent retries made any, stay as they are).
INSERT INTO logged_calls (call_id, activity_id, claimed_at)
SELECT data->>'call_id', MIN(id), MIN(created_at)
FROM records
WHERE object = 'activities' AND (data->>'call_id') IS NOT NULL
GROUP BY data->>'call_id';
