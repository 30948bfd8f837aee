//! The change log (SPEC section 11): appended in the transaction of the write it
//! describes, never edited, read newest first.

use serde_json::Value;

use super::db::{DbRow, Tx};
use super::query::Sql;
use super::*;
use crate::time::Millis;

pub(super) const CHANGE_COLS: &str =
    "id, org_id, at, action, entity, record_id, actor_type, actor_id, actor_name, user_id, user_email, key_id, changes";

pub(super) fn change(mut r: DbRow) -> StoreResult<Change> {
    let action = r.need_text(3)?;
    let kind = r.need_text(6)?;
    Ok(Change {
        id: r.need_text(0)?,
        org_id: r.need_text(1)?.into(),
        at: r.need_int(2)?,
        action: ACTIONS.iter().copied().find(|a| *a == action).unwrap_or("updated"),
        entity: r.need_text(4)?,
        record_id: r.need_text(5)?,
        actor: ChangeActor {
            kind: ["key", "user", "cli"].into_iter().find(|k| *k == kind).unwrap_or("system"),
            id: r.text(7)?,
            name: r.text(8)?,
            user_id: r.text(9)?,
            user_email: r.text(10)?,
            key_id: r.text(11)?,
        },
        changes: parse_json(&r.need_text(12)?, "changes")?,
    })
}

/// Every action an entry can name.
pub const ACTIONS: &[&str] = &["created", "updated", "deleted", "restored", "merged", "linked", "unlinked", "purged"];

impl Tx {
    /// Appends entries; only record writes in this module call it, with their own entries.
    pub async fn append_changes(&mut self, changes: &[Change]) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO changes ({CHANGE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        for c in changes {
            self.execute(
                &sql,
                &[
                    (&c.id).into(),
                    (&c.org_id).into(),
                    c.at.into(),
                    c.action.into(),
                    (&c.entity).into(),
                    (&c.record_id).into(),
                    c.actor.kind.into(),
                    (&c.actor.id).into(),
                    (&c.actor.name).into(),
                    (&c.actor.user_id).into(),
                    (&c.actor.user_email).into(),
                    (&c.actor.key_id).into(),
                    json_text(&Value::Object(c.changes.clone())).into(),
                ],
            )
            .await?;
        }
        // The webhook outbox: queued with the change, so a crash loses neither.
        self.queue_webhooks(changes).await
    }
}

impl Store {
    /// A record's timeline, newest first: its own entries and those of the records that
    /// point at it with a record reference (its notes and tasks), of `visible` entities only.
    pub async fn timeline(
        &self,
        org_id: &OrgId,
        entity: rapport_tools::Entity,
        record_id: &RecordId,
        visible: &[&str],
        before: Option<(Millis, String)>,
        limit: u32,
    ) -> StoreResult<Vec<Change>> {
        let mut sql = Sql::new(self.dialect());
        sql.push(&format!("SELECT {CHANGE_COLS} FROM changes WHERE org_id = "));
        sql.bind(org_id.into());
        sql.and_visible_changes(visible);
        sql.push(" AND ((entity = ");
        sql.bind(entity.as_str().into());
        sql.push(" AND record_id = ");
        sql.bind(record_id.into());
        sql.push(")");
        for e in rapport_tools::Entity::ALL {
            for f in e.def().columns().filter(|f| f.ty == rapport_tools::FieldType::RecordRef) {
                sql.push(" OR (entity = ");
                sql.bind(e.as_str().into());
                sql.push(&format!(" AND record_id IN (SELECT id FROM {t} WHERE org_id = ", t = e.def().plural));
                sql.bind(org_id.into());
                sql.push(&format!(" AND {}_entity = ", f.name));
                sql.bind(entity.as_str().into());
                sql.push(&format!(" AND {}_id = ", f.name));
                sql.bind(record_id.into());
                sql.push("))");
            }
        }
        sql.push(")");
        sql.newest_first(before.as_ref(), limit);
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(change).collect()
    }
}
