-- The document library: folders per department (or shared, with no department),
-- documents with versions, and their content stored once per SHA-256.

CREATE TABLE doc_folders (
    id            TEXT PRIMARY KEY,
    parent_id     TEXT REFERENCES doc_folders(id),
    name          TEXT NOT NULL,
    department_id TEXT REFERENCES departments(id),
    created_by    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX doc_folders_name ON doc_folders(COALESCE(parent_id, ''), name);

-- Content, by SHA-256: the store holds `blobs/<sha256>` once however many versions
-- point at it.
CREATE TABLE doc_blobs (
    sha256     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

-- A document and a copy of its current version's facts (so lists need no join).
-- `owner_id` and `department_id` (the folder's) are what access rules read.
CREATE TABLE documents (
    id              TEXT PRIMARY KEY,
    folder_id       TEXT NOT NULL REFERENCES doc_folders(id),
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    tags            TEXT NOT NULL,
    owner_id        TEXT,
    department_id   TEXT,
    current_version BIGINT NOT NULL,
    file_name       TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    -- Check-out: while set and not past `lock_until`, only `lock_owner` uploads.
    lock_owner      TEXT,
    lock_until      TEXT,
    -- In the trash since (restorable until an admin purges it).
    deleted_at      TEXT,
    deleted_by      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX documents_folder ON documents(folder_id, id);
CREATE INDEX documents_department ON documents(department_id, id);
CREATE INDEX documents_owner ON documents(owner_id, id);

CREATE TABLE document_versions (
    document_id  TEXT NOT NULL REFERENCES documents(id),
    version      BIGINT NOT NULL,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL REFERENCES doc_blobs(sha256),
    uploaded_by  TEXT,
    reason       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (document_id, version)
);

-- A document attached to a record (a deal, a contact, any object's record).
CREATE TABLE document_links (
    document_id TEXT NOT NULL REFERENCES documents(id),
    object      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    created_by  TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (document_id, object, record_id)
);
CREATE INDEX document_links_record ON document_links(record_id, object);

-- How many bytes of document versions a department may hold (no row: no limit).
CREATE TABLE doc_quotas (
    department_id TEXT PRIMARY KEY REFERENCES departments(id),
    max_bytes     BIGINT NOT NULL
);
