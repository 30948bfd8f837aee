//! Personal-data requests (SPEC 13): what is held about a person (the contacts with their
//! email, the notes, tasks and activities about those contacts, the activities they took
//! part in), and its erasure. An erasure deletes
//! those records for good, trash included, with their links, and replaces their values with
//! `"[erased]"` wherever a copy was kept: the change log, webhook bodies and the answers
//! receivers gave, stored idempotency answers, held approvals, import reports and the audit
//! log. One transaction: all of it or nothing.

use rapport_tools::Entity;
use serde_json::Value;

use super::db::Tx;
use super::records::{decode, sql_of};
use super::*;

pub const ERASED: &str = "[erased]";

/// What an organization holds about one person, trash included.
#[derive(Debug, Clone, Default)]
pub struct Held {
    pub contacts: Vec<Record>,
    /// Notes and tasks whose record is one of the contacts.
    pub notes: Vec<Record>,
    pub tasks: Vec<Record>,
    /// Activities whose record is one of the contacts: erased with them.
    pub activities: Vec<Record>,
    /// Activities about another record that list one of the contacts among their
    /// participants: exported; an erasure takes the contact out of them.
    pub participated: Vec<Record>,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    fn records(&self) -> impl Iterator<Item = &Record> {
        self.contacts.iter().chain(&self.notes).chain(&self.tasks).chain(&self.activities)
    }
}

/// What an erasure touched, by table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Erased {
    pub contacts: u64,
    pub notes: u64,
    pub tasks: u64,
    pub activities: u64,
    pub links: u64,
    pub changes: u64,
    pub webhook_deliveries: u64,
    pub webhook_attempts: u64,
    pub idempotency_answers: u64,
    pub approvals: u64,
    pub import_rows: u64,
    pub audit_entries: u64,
}

/// The strings that identify the person: held anywhere, a string that contains one of
/// `contained` (email, phone) or equals one of `exact` (names) is erased.
struct Needles {
    contained: Vec<String>,
    exact: Vec<String>,
    /// The erased records' ids: a copy of one of them (an object with its `id`) loses every
    /// value.
    ids: Vec<String>,
}

impl Needles {
    fn of(held: &Held) -> Needles {
        let mut contained = Vec::new();
        let mut exact = Vec::new();
        for c in &held.contacts {
            for f in ["email", "phone"] {
                if let Some(v) = c.text(f).filter(|v| v.len() >= 3) {
                    contained.push(v.to_lowercase());
                }
            }
            let first = c.text("first_name").unwrap_or_default();
            let last = c.text("last_name").unwrap_or_default();
            for name in [first.to_owned(), last.to_owned(), format!("{first} {last}").trim().to_owned()] {
                if name.chars().count() >= 2 {
                    exact.push(name.to_lowercase());
                }
            }
        }
        contained.sort();
        contained.dedup();
        exact.sort();
        exact.dedup();
        let ids = held.records().map(|r| r.id.as_str().to_lowercase()).collect();
        Needles { contained, exact, ids }
    }

    fn hits(&self, s: &str) -> bool {
        let lower = s.to_lowercase();
        self.contained.iter().any(|n| lower.contains(n.as_str())) || self.exact.iter().any(|n| lower.trim() == n)
    }

    /// Every string of `v` that names the person, erased; whether any was.
    fn scrub(&self, v: &mut Value) -> bool {
        match v {
            Value::String(s) if self.hits(s) => {
                *s = ERASED.to_owned();
                true
            }
            Value::Array(items) => items.iter_mut().fold(false, |any, i| self.scrub(i) | any),
            Value::Object(m)
                if m.get("id").and_then(Value::as_str).is_some_and(|id| self.ids.contains(&id.to_lowercase())) =>
            {
                erase_all(v);
                true
            }
            Value::Object(m) => m.values_mut().fold(false, |any, i| self.scrub(i) | any),
            _ => false,
        }
    }

    /// A stored answer: JSON scrubbed as JSON, other text by its emails and phones.
    fn scrub_answer(&self, text: &str) -> Option<String> {
        match serde_json::from_str::<Value>(text) {
            Ok(mut v) => self.scrub(&mut v).then(|| json_text(&v)),
            Err(_) => self.scrub_text(text),
        }
    }

    /// Plain text with each email or phone replaced (names are left to structured fields).
    fn scrub_text(&self, s: &str) -> Option<String> {
        let mut out = s.to_owned();
        let mut hit = false;
        for n in &self.contained {
            let lower = out.to_lowercase();
            if let Some(i) = lower.find(n.as_str()) {
                out.replace_range(i..i + n.len(), ERASED);
                hit = true;
            }
        }
        hit.then_some(out)
    }

    /// `lower(col) LIKE …` for each needle, for finding the rows to look at.
    fn like(&self, sql: &mut query::Sql, col: &str) {
        sql.push(" AND (");
        for (i, n) in self.contained.iter().chain(&self.exact).chain(&self.ids).enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            sql.push(&format!("lower({col}) LIKE "));
            let escaped = n.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            sql.bind(format!("%{escaped}%").into());
            sql.push(" ESCAPE '\\'");
        }
        sql.push(")");
    }
}

/// Every value under `v` (but ids and entity names) as `"[erased]"`.
fn erase_all(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if !matches!(k.as_str(), "id" | "entity" | "type" | "timestamp") {
                    erase_all(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(erase_all),
        Value::Null => {}
        other => *other = Value::String(ERASED.to_owned()),
    }
}

impl Store {
    /// The contacts with this email (any case, live or trashed), and the notes and tasks
    /// about them.
    pub async fn held_about(&self, org_id: &OrgId, email: &str) -> StoreResult<Held> {
        // Emails are stored lowercase. Live contacts are found through the email index,
        // trashed ones through the trash index.
        let email = email.trim().to_lowercase();
        let mut sql = query::Sql::new(self.dialect());
        for (i, live) in ["deleted_at IS NULL", "deleted_at IS NOT NULL"].into_iter().enumerate() {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            sql.push(&sql_of(Entity::Contact).select);
            sql.push(" WHERE org_id = ");
            sql.bind(org_id.into());
            sql.push(&format!(" AND {live} AND email = "));
            sql.bind(email.as_str().into());
        }
        let contacts = self
            .db
            .fetch(&sql.text, &sql.binds)
            .await?
            .into_iter()
            .map(|r| decode(Entity::Contact, r))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut held = Held { contacts, ..Held::default() };
        if held.contacts.is_empty() {
            return Ok(held);
        }
        for entity in [Entity::Note, Entity::Task, Entity::Activity] {
            let mut sql = query::Sql::new(self.dialect());
            sql.push(&sql_of(entity).select);
            sql.push(" WHERE org_id = ");
            sql.bind(org_id.into());
            sql.push(" AND record_entity = 'contact' AND record_id IN ");
            sql.bind_list(held.contacts.iter().map(|c| SqlValue::from(&c.id)));
            sql.push(" ORDER BY created_at, id");
            let rows = self.db.fetch(&sql.text, &sql.binds).await?;
            let records = rows.into_iter().map(|r| decode(entity, r)).collect::<StoreResult<Vec<_>>>()?;
            match entity {
                Entity::Note => held.notes = records,
                Entity::Task => held.tasks = records,
                _ => held.activities = records,
            }
        }
        let mut sql = query::Sql::new(self.dialect());
        sql.push(&sql_of(Entity::Activity).select);
        sql.push(" WHERE org_id = ");
        sql.bind(org_id.into());
        sql.push(" AND NOT (record_entity = 'contact' AND record_id IN ");
        sql.bind_list(held.contacts.iter().map(|c| SqlValue::from(&c.id)));
        let links = super::last_activity::links_to(self.dialect());
        sql.push(&format!(") AND id IN (SELECT from_id FROM {links} WHERE org_id = "));
        sql.bind(org_id.into());
        sql.push(" AND from_entity = 'activity' AND to_entity = 'contact' AND to_id IN ");
        sql.bind_list(held.contacts.iter().map(|c| SqlValue::from(&c.id)));
        sql.push(") ORDER BY created_at, id");
        let rows = self.db.fetch(&sql.text, &sql.binds).await?;
        held.participated = rows.into_iter().map(|r| decode(Entity::Activity, r)).collect::<StoreResult<_>>()?;
        Ok(held)
    }

    /// Erases what `held` names, everywhere, with the audit entry that says it happened.
    pub async fn erase(&self, org_id: &OrgId, held: &Held, audit: &AuditEntry) -> StoreResult<Erased> {
        let mut tx = self.begin().await?;
        tx.lock_org(org_id).await?;
        let needles = Needles::of(held);
        let mut n = Erased::default();
        let ids: Vec<SqlValue> = held.records().map(|r| SqlValue::from(&r.id)).collect();
        let contacts: Vec<SqlValue> = held.contacts.iter().map(|r| SqlValue::from(&r.id)).collect();
        // Whose last activity the erased activities, and the contacts leaving others, change.
        let mut activity_ids: Vec<RecordId> = held.activities.iter().map(|r| r.id.clone()).collect();
        activity_ids.extend(held.participated.iter().map(|r| r.id.clone()));
        let targets = tx.activity_targets(org_id, &activity_ids).await?;
        // Links to and from the contacts (a deal's contact_ids).
        let mut sql = query::Sql::new(tx.dialect());
        sql.push("DELETE FROM record_links WHERE org_id = ");
        sql.bind(org_id.into());
        sql.push(" AND ((from_entity = 'contact' AND from_id IN ");
        sql.bind_list(contacts.iter().cloned());
        sql.push(") OR (to_entity = 'contact' AND to_id IN ");
        sql.bind_list(contacts.iter().cloned());
        sql.push("))");
        n.links = tx.execute(&sql.text, &sql.binds).await?;
        sql = query::Sql::new(tx.dialect());
        sql.push("DELETE FROM trashed_custom_values WHERE record_id IN ");
        sql.bind_list(ids.iter().cloned());
        tx.execute(&sql.text, &sql.binds).await?;
        // Links from the erased activities (their other participants).
        if !held.activities.is_empty() {
            let mut sql = query::Sql::new(tx.dialect());
            sql.push("DELETE FROM record_links WHERE org_id = ");
            sql.bind(org_id.into());
            sql.push(" AND from_entity = 'activity' AND from_id IN ");
            sql.bind_list(held.activities.iter().map(|r| SqlValue::from(&r.id)));
            n.links += tx.execute(&sql.text, &sql.binds).await?;
        }
        for (entity, records, count) in [
            (Entity::Note, &held.notes, &mut n.notes),
            (Entity::Task, &held.tasks, &mut n.tasks),
            (Entity::Activity, &held.activities, &mut n.activities),
            (Entity::Contact, &held.contacts, &mut n.contacts),
        ] {
            if records.is_empty() {
                continue;
            }
            let mut sql = query::Sql::new(tx.dialect());
            sql.push(&format!("DELETE FROM {} WHERE org_id = ", entity.plural()));
            sql.bind(org_id.into());
            sql.push(" AND id IN ");
            sql.bind_list(records.iter().map(|r| SqlValue::from(&r.id)));
            *count = tx.execute(&sql.text, &sql.binds).await?;
        }
        tx.refresh_last_activity(org_id, &targets).await?;
        // Their own change entries lose every value; any other that names them, those names.
        n.changes = scrub_json(&mut tx, org_id, "changes", "id", "changes", &needles, Some(&ids), None).await?;
        n.webhook_deliveries =
            scrub_json(&mut tx, org_id, "webhook_deliveries", "id", "payload", &needles, Some(&ids), None).await?;
        n.webhook_deliveries +=
            scrub_json(&mut tx, org_id, "webhook_events", "id", "body", &needles, Some(&ids), None).await?;
        n.idempotency_answers =
            scrub_json(&mut tx, org_id, "idempotency_keys", "idem_key", "response", &needles, None, None).await?;
        for col in ["arguments", "changes", "result"] {
            n.approvals += scrub_json(&mut tx, org_id, "approvals", "id", col, &needles, None, None).await?;
        }
        n.audit_entries = scrub_json(&mut tx, org_id, "audit_log", "id", "details", &needles, None, None).await?;
        n.import_rows = scrub_json(
            &mut tx,
            org_id,
            "import_failures",
            "line",
            "cells",
            &needles,
            None,
            Some("import_id IN (SELECT id FROM imports WHERE org_id = "),
        )
        .await?;
        // What receivers answered is plain text.
        let mut sql = query::Sql::new(tx.dialect());
        sql.push("SELECT id, response FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE org_id = ");
        sql.bind(org_id.into());
        sql.push(")");
        needles.like(&mut sql, "response");
        for mut row in tx.fetch(&sql.text, &sql.binds).await? {
            let id = row.need_text("id")?;
            if let Some(text) = row.text("response")?.and_then(|t| needles.scrub_answer(&t)) {
                tx.execute("UPDATE webhook_attempts SET response = $1 WHERE id = $2", &[text.into(), id.into()])
                    .await?;
                n.webhook_attempts += 1;
            }
        }
        tx.insert_audit(audit).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Scrubs one JSON column: rows whose record is one of `own` lose every value; other rows
/// of the organization lose the strings that name the person. `scope` replaces the
/// `org_id = ` condition for tables that reach their organization through a parent.
#[allow(clippy::too_many_arguments)]
async fn scrub_json(
    tx: &mut Tx,
    org_id: &OrgId,
    table: &str,
    key: &str,
    col: &str,
    needles: &Needles,
    own: Option<&[SqlValue]>,
    scope: Option<&str>,
) -> StoreResult<u64> {
    let mut done = 0;
    let dialect = tx.dialect();
    let keys = if table == "idempotency_keys" { "key_id, idem_key" } else { key };
    let where_org = |sql: &mut query::Sql| match scope {
        Some(s) => {
            sql.push(&format!(" WHERE {s}"));
            sql.bind(org_id.into());
            sql.push(")");
        }
        None => {
            sql.push(" WHERE org_id = ");
            sql.bind(org_id.into());
        }
    };
    let select = |own_rows: bool| {
        let mut sql = query::Sql::new(dialect);
        let pk = if table == "import_failures" { "import_id, line" } else { keys };
        sql.push(&format!("SELECT {pk}, {col} AS body FROM {table}"));
        where_org(&mut sql);
        sql.push(&format!(" AND {col} IS NOT NULL"));
        if own_rows {
            sql.push(" AND record_id IN ");
            sql.bind_list(own.unwrap_or_default().iter().cloned());
        } else {
            needles.like(&mut sql, col);
        }
        sql
    };
    for own_rows in [true, false] {
        if own_rows && own.is_none_or(|o| o.is_empty()) {
            continue;
        }
        let sql = select(own_rows);
        for mut row in tx.fetch(&sql.text, &sql.binds).await? {
            let Some(text) = row.text("body")? else { continue };
            let Ok(mut v) = serde_json::from_str::<Value>(&text) else { continue };
            let changed = if own_rows {
                match (table, &mut v) {
                    ("webhook_deliveries", Value::Object(m)) => {
                        m.get_mut("data").map(erase_all);
                        true
                    }
                    _ => {
                        erase_all(&mut v);
                        true
                    }
                }
            } else {
                needles.scrub(&mut v)
            };
            if !changed {
                continue;
            }
            let body = json_text(&v);
            match table {
                "idempotency_keys" => {
                    let (k, i) = (row.need_text("key_id")?, row.need_text("idem_key")?);
                    tx.execute(
                        &format!("UPDATE {table} SET {col} = $1 WHERE key_id = $2 AND idem_key = $3"),
                        &[body.into(), k.into(), i.into()],
                    )
                    .await?
                }
                "import_failures" => {
                    let (imp, line) = (row.need_text("import_id")?, row.need_int("line")?);
                    tx.execute(
                        &format!("UPDATE {table} SET {col} = $1 WHERE import_id = $2 AND line = $3"),
                        &[body.into(), imp.into(), line.into()],
                    )
                    .await?
                }
                _ => {
                    let id = row.need_text(key)?;
                    tx.execute(&format!("UPDATE {table} SET {col} = $1 WHERE {key} = $2"), &[body.into(), id.into()])
                        .await?
                }
            };
            done += 1;
        }
    }
    Ok(done)
}
