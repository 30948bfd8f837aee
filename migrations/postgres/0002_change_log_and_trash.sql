-- Records go to a trash (deleted_at) instead of being deleted; a company's domain is unique
-- among live companies only; every record write appends to the change log.

ALTER TABLE companies ADD COLUMN deleted_at BIGINT;
ALTER TABLE companies DROP CONSTRAINT companies_org_id_domain_key;
CREATE UNIQUE INDEX companies_org_domain ON companies (org_id, domain) WHERE deleted_at IS NULL;
CREATE INDEX companies_trash ON companies (deleted_at) WHERE deleted_at IS NOT NULL;

ALTER TABLE contacts ADD COLUMN deleted_at BIGINT;
CREATE INDEX contacts_trash ON contacts (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE changes (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    action      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT COLLATE "C" NOT NULL,
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
