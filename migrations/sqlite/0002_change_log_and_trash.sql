-- no-transaction
-- Records go to a trash (deleted_at) instead of being deleted; a company's domain is unique
-- among live companies only; every record write appends to the change log.
--
-- SQLite cannot drop a table constraint, so `companies` is rebuilt the documented way:
-- foreign keys off (outside a transaction), copy, drop, rename, back on.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE companies_new (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    domain      TEXT,
    industry    TEXT,
    owner_id    TEXT REFERENCES users(id) ON DELETE SET NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    custom      TEXT NOT NULL DEFAULT '{}',
    search      TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
INSERT INTO companies_new (id, org_id, name, domain, industry, owner_id, tags, custom, search, created_at, updated_at)
    SELECT id, org_id, name, domain, industry, owner_id, tags, custom, search, created_at, updated_at FROM companies;
DROP TABLE companies;
ALTER TABLE companies_new RENAME TO companies;
CREATE INDEX companies_org_created ON companies (org_id, created_at, id);
CREATE INDEX companies_org_name ON companies (org_id, name);
CREATE UNIQUE INDEX companies_org_domain ON companies (org_id, domain) WHERE deleted_at IS NULL;
CREATE INDEX companies_trash ON companies (deleted_at) WHERE deleted_at IS NOT NULL;

ALTER TABLE contacts ADD COLUMN deleted_at INTEGER;
CREATE INDEX contacts_trash ON contacts (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE changes (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT,
    user_id     TEXT,
    user_email  TEXT,
    key_id      TEXT,
    changes     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX changes_org_at ON changes (org_id, at, id);
CREATE INDEX changes_record ON changes (org_id, entity, record_id, at, id);

COMMIT;
PRAGMA foreign_keys = ON;
