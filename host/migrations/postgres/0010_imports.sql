-- CSV imports: the uploaded file's facts, the run's settings and its progress, and
-- every row the run refused with the reason. The file itself lies in the data dir.
CREATE TABLE imports (
    id          TEXT PRIMARY KEY,
    object      TEXT NOT NULL,
    created_by  TEXT NOT NULL REFERENCES users(id),
    file_name   TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    -- The header row, a JSON array of column names.
    columns     TEXT NOT NULL,
    rows_total  BIGINT NOT NULL,
    -- uploaded, checking, checked, running, done, cancelled, failed
    status      TEXT NOT NULL,
    dry_run     INTEGER NOT NULL DEFAULT 0,
    -- The last run's mapping, match_on and on_duplicate, as JSON.
    settings    TEXT,
    rows_done   BIGINT NOT NULL DEFAULT 0,
    created     BIGINT NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL DEFAULT 0,
    unchanged   BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    error       TEXT,
    -- The run under way: a run only records its progress while it is still the
    -- import's run (not after a cancel and a new start, nor a takeover on resume).
    run_id      TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX imports_creator ON imports(created_by, id);

CREATE TABLE import_errors (
    import_id  TEXT NOT NULL,
    row_number BIGINT NOT NULL,
    message    TEXT NOT NULL,
    PRIMARY KEY (import_id, row_number)
);
