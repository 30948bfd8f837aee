-- Deals in pipelines, tasks, notes, many-to-many links, idempotency keys, and what a trashed
-- record's references were so a restore can bring them back.

ALTER TABLE contacts ADD COLUMN trashed_refs TEXT;
ALTER TABLE companies ADD COLUMN trashed_refs TEXT;

CREATE TABLE pipelines (
    id          TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- [{"name", "kind": "open" | "won" | "lost"}] in order
    stages      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
INSERT INTO pipelines (id, org_id, name, stages, created_at, updated_at)
    SELECT 'pl-' || id, id, 'sales',
        '[{"name":"lead","kind":"open"},{"name":"qualified","kind":"open"},{"name":"proposal","kind":"open"},{"name":"negotiation","kind":"open"},{"name":"won","kind":"won"},{"name":"lost","kind":"lost"}]',
        created_at, created_at
    FROM orgs;

CREATE TABLE deals (
    id           TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    value        TEXT,
    currency     TEXT,
    pipeline     TEXT NOT NULL,
    stage        TEXT NOT NULL,
    status       TEXT NOT NULL,
    close_date   TEXT,
    company_id   TEXT REFERENCES companies(id) ON DELETE SET NULL,
    owner_id     TEXT REFERENCES users(id) ON DELETE SET NULL,
    tags         TEXT NOT NULL DEFAULT '[]',
    custom       TEXT NOT NULL DEFAULT '{}',
    search       TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT,
    trashed_refs TEXT
);
CREATE INDEX deals_org_created ON deals (org_id, created_at, id);
CREATE INDEX deals_org_stage ON deals (org_id, pipeline, stage);
CREATE INDEX deals_company ON deals (company_id);
CREATE INDEX deals_trash ON deals (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE tasks (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    body          TEXT,
    due_at        BIGINT,
    status        TEXT NOT NULL,
    done_at       BIGINT,
    assignee_id   TEXT REFERENCES users(id) ON DELETE SET NULL,
    record_entity TEXT,
    record_id     TEXT,
    tags          TEXT NOT NULL DEFAULT '[]',
    custom        TEXT NOT NULL DEFAULT '{}',
    search        TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    trashed_refs  TEXT
);
CREATE INDEX tasks_org_created ON tasks (org_id, created_at, id);
CREATE INDEX tasks_org_due ON tasks (org_id, due_at);
CREATE INDEX tasks_record ON tasks (org_id, record_entity, record_id);
CREATE INDEX tasks_trash ON tasks (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE notes (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    body          TEXT NOT NULL,
    record_entity TEXT,
    record_id     TEXT,
    custom        TEXT NOT NULL DEFAULT '{}',
    search        TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    trashed_refs  TEXT
);
CREATE INDEX notes_org_created ON notes (org_id, created_at, id);
CREATE INDEX notes_record ON notes (org_id, record_entity, record_id, created_at);
CREATE INDEX notes_trash ON notes (deleted_at) WHERE deleted_at IS NOT NULL;

-- Many-to-many relations (a deal's contacts): one row per pair.
CREATE TABLE record_links (
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    from_entity TEXT NOT NULL,
    from_id     TEXT NOT NULL,
    to_entity   TEXT NOT NULL,
    to_id       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, from_entity, from_id, to_entity, to_id)
);
CREATE INDEX record_links_to ON record_links (org_id, to_entity, to_id);

-- A repeated call with the same idempotency key by the same API key gets the first answer.
CREATE TABLE idempotency_keys (
    key_id       TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    org_id       TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    tool         TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
