-- Imports (SPEC 13): one row per import, its progress written in the same transaction as
-- each batch of rows it stores, so a rerun after a crash knows exactly where to go on.
CREATE TABLE imports (
    id            TEXT PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    entity        TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    -- SHA-256 of the file: a rerun of the same file resumes the interrupted import.
    fingerprint   TEXT NOT NULL,
    options       TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    actor_kind    TEXT NOT NULL,
    actor_id      TEXT,
    -- Which process runs it (host:pid) and when it last reported.
    runner        TEXT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
    dry_run       BOOLEAN NOT NULL,
    total_rows    BIGINT NOT NULL,
    rows_done     BIGINT NOT NULL DEFAULT 0,
    created       BIGINT NOT NULL DEFAULT 0,
    updated       BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    companies_created BIGINT NOT NULL DEFAULT 0,
    report        TEXT NOT NULL,
    error         TEXT,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX imports_org ON imports (org_id, started_at, id);
CREATE INDEX imports_fingerprint ON imports (org_id, fingerprint, state);

-- The rows an import could not store: their line, why, and their cells as read.
CREATE TABLE import_failures (
    import_id  TEXT NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    line       BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    cells      TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
);
