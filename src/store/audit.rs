//! The audit log: key, user and organization actions, and refused uses of keys.

use super::db::{DbRow, Tx};
use super::*;
use crate::time::Millis;

const AUDIT_COLS: &str = "id, org_id, at, actor_type, actor_id, action, target_type, target_id, key_id, ip, details, \
     actor_key_id, client_name, client_version, tool, route, request_id, trace_id";

fn audit(mut r: DbRow) -> StoreResult<AuditEntry> {
    let kind = r.need_text("actor_type")?;
    let actor_id = r.text("actor_id")?;
    let key_id = r.text("key_id")?.map(KeyId::from);
    let action = r.need_text("action")?;
    // Entries written before the acting key had a column of its own named it only in a
    // refused use, where the key acted on is the key that tried.
    let actor_key_id =
        r.text("actor_key_id")?.map(KeyId::from).or_else(|| key_id.clone().filter(|_| action == "key.refused"));
    let actor = match (kind.as_str(), actor_id) {
        ("cli", _) => Actor::Cli,
        ("key", Some(id)) => Actor::Key { key_id: actor_key_id.unwrap_or_default(), user_id: id.into() },
        ("user", Some(id)) => Actor::User { user_id: id.into() },
        _ => Actor::System,
    };
    Ok(AuditEntry {
        id: r.need_text("id")?,
        org_id: r.text("org_id")?.map(OrgId::from),
        at: r.need_int("at")?,
        actor,
        action,
        target_type: r.text("target_type")?,
        target_id: r.text("target_id")?,
        key_id,
        ip: r.text("ip")?,
        details: parse_json(&r.need_text("details")?, "details")?,
        via: super::changes::via(&mut r)?,
    })
}

impl Store {
    /// Writes one entry on its own (refused uses, which change nothing else).
    pub async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.insert_audit(entry).await?;
        tx.commit().await
    }

    /// Newest first; `before` is the `(at, id)` of the last entry of the previous page.
    pub async fn list_audit(
        &self,
        org_id: &OrgId,
        filter: &AuditFilter,
        before: Option<(Millis, String)>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        let mut sql = query::Sql::new(self.dialect());
        sql.push(&format!("SELECT {AUDIT_COLS} FROM audit_log WHERE org_id = "));
        sql.bind(org_id.into());
        sql.and_equal([("action", (&filter.action).into())]);
        if let Some(key) = &filter.key_id {
            // What the key did, and what was done to it.
            sql.push(" AND (key_id = ");
            sql.bind(key.into());
            sql.push(" OR actor_key_id = ");
            sql.bind(key.into());
            sql.push(")");
        }
        sql.newest_first(before.as_ref(), limit);
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(audit).collect()
    }

    /// The actions the organization's audit log holds, for a filter's choices.
    pub async fn audit_actions(&self, org_id: &OrgId) -> StoreResult<Vec<String>> {
        let rows = self
            .db
            .fetch("SELECT DISTINCT action FROM audit_log WHERE org_id = $1 ORDER BY action", &[org_id.into()])
            .await?;
        rows.into_iter().map(|mut r| r.need_text("action")).collect()
    }
}

/// Which audit entries a page shows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub key_id: Option<KeyId>,
}

impl Tx {
    pub async fn insert_audit(&mut self, e: &AuditEntry) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO audit_log ({AUDIT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18)"
        );
        let [v1, v2, v3, v4, v5, v6] = super::changes::via_values(&e.via);
        self.execute(
            &sql,
            &[
                (&e.id).into(),
                e.org_id.as_ref().map(OrgId::as_str).into(),
                e.at.into(),
                e.actor.kind().into(),
                e.actor.id().into(),
                (&e.action).into(),
                (&e.target_type).into(),
                (&e.target_id).into(),
                (&e.key_id).into(),
                (&e.ip).into(),
                json_text(&e.details).into(),
                e.actor.key_id().into(),
                v1,
                v2,
                v3,
                v4,
                v5,
                v6,
            ],
        )
        .await?;
        Ok(())
    }
}
