-- Calendar feeds: a private address (its token's SHA-256 is kept, never the token)
-- from which calendar apps read a user's or a department's activities as iCalendar.
CREATE TABLE calendar_feeds (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    token_hash   TEXT NOT NULL UNIQUE,
    -- 'me' (activities assigned to the user) or 'department:<id>'
    scope        TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX calendar_feeds_user ON calendar_feeds(user_id, id);
