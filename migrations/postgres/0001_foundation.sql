-- Timestamps are BIGINT milliseconds since the Unix epoch; ids are UUIDv7 text;
-- JSON is TEXT (parsed in Rust, read with ->> in filters). Mirrors the SQLite migration.

CREATE TABLE orgs (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email         TEXT COLLATE "C" NOT NULL,
    name          TEXT,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (org_id, email)
);

CREATE TABLE api_keys (
    id             TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id         TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    digest         TEXT NOT NULL UNIQUE,
    preview        TEXT NOT NULL,
    role           TEXT,
    scopes         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('enabled', 'disabled', 'revoked')),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT,
    allowed_cidrs  TEXT NOT NULL DEFAULT '[]',
    last_used_at   BIGINT,
    last_used_ip   TEXT,
    revoked_at     BIGINT,
    rotated_from   TEXT,
    -- the previous secret during a rotation grace period
    grace_digest   TEXT UNIQUE,
    grace_until    BIGINT
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at, id);

CREATE TABLE custom_fields (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    entity      TEXT NOT NULL,
    key         TEXT NOT NULL,
    label       TEXT NOT NULL,
    field_type  TEXT NOT NULL,
    options     TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL,
    UNIQUE (org_id, entity, key)
);

CREATE TABLE companies (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    domain      TEXT COLLATE "C",
    industry    TEXT,
    owner_id    TEXT REFERENCES users(id) ON DELETE SET NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    custom      TEXT NOT NULL DEFAULT '{}',
    search      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, domain)
);
CREATE INDEX companies_org_created ON companies (org_id, created_at, id);
CREATE INDEX companies_org_name ON companies (org_id, name);

CREATE TABLE contacts (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    first_name  TEXT,
    last_name   TEXT,
    email       TEXT COLLATE "C",
    phone       TEXT,
    title       TEXT,
    company_id  TEXT REFERENCES companies(id) ON DELETE SET NULL,
    owner_id    TEXT REFERENCES users(id) ON DELETE SET NULL,
    tags        TEXT NOT NULL DEFAULT '[]',
    custom      TEXT NOT NULL DEFAULT '{}',
    search      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX contacts_org_created ON contacts (org_id, created_at, id);
CREATE INDEX contacts_org_email ON contacts (org_id, email);
CREATE INDEX contacts_company ON contacts (company_id);

CREATE TABLE audit_log (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id      TEXT REFERENCES orgs(id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    key_id      TEXT,
    ip          TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_org_at ON audit_log (org_id, at, id);
