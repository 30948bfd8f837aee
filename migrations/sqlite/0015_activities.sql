-- Activities (SPEC 5): calls, meetings, emails and messages that happened, about a contact,
-- company or deal, with the contacts who took part in `record_links` (participant_ids).
CREATE TABLE activities (
    id               TEXT PRIMARY KEY NOT NULL,
    org_id           TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    subject          TEXT,
    body             TEXT,
    occurred_at      INTEGER NOT NULL,
    duration_minutes REAL,
    direction        TEXT,
    outcome          TEXT,
    record_entity    TEXT,
    record_id        TEXT,
    owner_id         TEXT REFERENCES users(id) ON DELETE SET NULL,
    tags             TEXT NOT NULL DEFAULT '[]',
    custom           TEXT NOT NULL DEFAULT '{}',
    search           TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER,
    trashed_refs     TEXT
);
CREATE INDEX activities_org_created ON activities (org_id, created_at, id);
-- The newest activity about a record (last_activity_at) and a record's timeline.
CREATE INDEX activities_record ON activities (org_id, record_entity, record_id, occurred_at) WHERE deleted_at IS NULL;
CREATE INDEX activities_trash ON activities (deleted_at) WHERE deleted_at IS NOT NULL;

-- Kept by the store in each activity's transaction, never by a record write.
ALTER TABLE contacts ADD COLUMN last_activity_at INTEGER;
ALTER TABLE companies ADD COLUMN last_activity_at INTEGER;
ALTER TABLE deals ADD COLUMN last_activity_at INTEGER;
