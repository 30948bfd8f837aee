//! The change log (SPEC section 11): appended in the transaction of the write it
//! describes, never edited, read newest first.

use serde_json::Value;

use super::db::{DbRow, Tx};
use super::query::Sql;
use super::*;
use crate::time::Millis;

pub(super) const CHANGE_COLS: &str = "id, org_id, at, action, entity, record_id, actor_type, actor_id, actor_name, \
     user_id, user_email, key_id, changes, client_name, client_version, tool, route, request_id, trace_id, reverts";

/// `Via` (SPEC 12) from the six columns both logs end with (`client_name, client_version,
/// tool, route, request_id, trace_id`).
pub(super) fn via(r: &mut DbRow) -> StoreResult<Via> {
    let client = r.text("client_name")?.map(|name| ClientInfo { name, version: None });
    let version = r.text("client_version")?;
    Ok(Via {
        client: client.map(|c| ClientInfo { version, ..c }),
        tool: r.text("tool")?,
        route: r.text("route")?,
        request_id: r.text("request_id")?,
        trace_id: r.text("trace_id")?,
    })
}

/// The values of those six columns.
pub(super) fn via_values(v: &Via) -> [SqlValue; 6] {
    [
        v.client.as_ref().map(|c| c.name.as_str()).into(),
        v.client.as_ref().and_then(|c| c.version.as_deref()).into(),
        v.tool.as_deref().into(),
        v.route.as_deref().into(),
        v.request_id.as_deref().into(),
        v.trace_id.as_deref().into(),
    ]
}

pub(super) fn change(mut r: DbRow) -> StoreResult<Change> {
    let action = r.need_text("action")?;
    let kind = r.need_text("actor_type")?;
    Ok(Change {
        id: r.need_text("id")?,
        org_id: r.need_text("org_id")?.into(),
        at: r.need_int("at")?,
        action: ChangeAction::parse(&action).ok_or_else(|| StoreError::Corrupt(format!("change action {action}")))?,
        entity: {
            let e = r.need_text("entity")?;
            ChangeEntity::parse(&e).ok_or_else(|| StoreError::Corrupt(format!("change entity {e}")))?
        },
        record_id: r.need_text("record_id")?,
        actor: ChangeActor {
            kind: ChangeActor::kind_of(&kind),
            id: r.text("actor_id")?,
            name: r.text("actor_name")?,
            user_id: r.text("user_id")?.map(UserId::from),
            user_email: r.text("user_email")?,
            key_id: r.text("key_id")?.map(KeyId::from),
        },
        changes: parse_json(&r.need_text("changes")?, "changes")?,
        via: via(&mut r)?,
        reverts: r.text("reverts")?.map(|s| parse_json(&s, "reverts")).transpose()?.unwrap_or_default(),
    })
}

impl Tx {
    /// Appends entries; only record writes in this module call it, with their own entries.
    pub async fn append_changes(&mut self, changes: &[Change]) -> StoreResult<()> {
        self.append_changes_of(changes, &[]).await
    }

    /// Appends entries of a write that holds `written`, records as this transaction leaves
    /// them: their events need not read them back.
    pub(super) async fn append_changes_of(&mut self, changes: &[Change], written: &[&Record]) -> StoreResult<()> {
        super::dry::note(changes);
        let rows: Vec<Vec<SqlValue>> = changes
            .iter()
            .map(|c| {
                let [v1, v2, v3, v4, v5, v6] = via_values(&c.via);
                vec![
                    (&c.id).into(),
                    (&c.org_id).into(),
                    c.at.into(),
                    c.action.as_str().into(),
                    c.entity.as_str().into(),
                    (&c.record_id).into(),
                    c.actor.kind.into(),
                    (&c.actor.id).into(),
                    (&c.actor.name).into(),
                    (&c.actor.user_id).into(),
                    (&c.actor.user_email).into(),
                    (&c.actor.key_id).into(),
                    json_text(&Value::Object(c.changes.clone())).into(),
                    v1,
                    v2,
                    v3,
                    v4,
                    v5,
                    v6,
                    (!c.reverts.is_empty()).then(|| json_text(&c.reverts)).into(),
                ]
            })
            .collect();
        self.insert_many(&format!("INSERT INTO changes ({CHANGE_COLS})"), rows).await?;
        // The webhook outbox: queued with the change, so a crash loses neither.
        self.queue_webhooks(changes, written).await
    }
}

impl Store {
    /// A record's timeline, newest first: its own entries and those of the records that
    /// point at it with a record reference (its notes, tasks and activities) or, being
    /// about records, link to it (the activities a contact took part in), of `visible`
    /// entities only.
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
            let about_records = e.def().columns().any(|f| f.ty == rapport_tools::FieldType::RecordRef);
            let links_here = e
                .def()
                .fields
                .iter()
                .any(|f| about_records && f.storage == rapport_tools::Storage::Links && f.target == Some(entity));
            if links_here {
                sql.push(" OR (entity = ");
                sql.bind(e.as_str().into());
                let links = super::last_activity::links_to(self.dialect());
                sql.push(&format!(" AND record_id IN (SELECT from_id FROM {links} WHERE org_id = "));
                sql.bind(org_id.into());
                sql.push(" AND from_entity = ");
                sql.bind(e.as_str().into());
                sql.push(" AND to_entity = ");
                sql.bind(entity.as_str().into());
                sql.push(" AND to_id = ");
                sql.bind(record_id.into());
                sql.push("))");
            }
        }
        sql.push(")");
        sql.newest_first(before.as_ref(), limit);
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(change).collect()
    }
}

/// Which change entries a revert takes (SPEC 12): given ids, one call's, or what one key did
/// in a time window.
#[derive(Debug, Clone, Default)]
pub struct RevertSelection {
    pub ids: Vec<String>,
    pub request_id: Option<String>,
    pub key_id: Option<KeyId>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
}

impl Store {
    /// The entries `sel` names, newest first, at most `limit`.
    pub async fn changes_to_revert(
        &self,
        org_id: &OrgId,
        sel: &RevertSelection,
        limit: u32,
    ) -> StoreResult<Vec<Change>> {
        let mut sql = Sql::new(self.dialect());
        sql.push(&format!("SELECT {CHANGE_COLS} FROM changes WHERE org_id = "));
        sql.bind(org_id.into());
        if !sel.ids.is_empty() {
            sql.push(" AND id IN ");
            sql.bind_list(sel.ids.iter().map(SqlValue::from));
        }
        sql.and_equal([("request_id", (&sel.request_id).into()), ("key_id", (&sel.key_id).into())]);
        if let Some(since) = sel.since {
            sql.push(" AND at >= ").bind(since.into());
        }
        if let Some(until) = sel.until {
            sql.push(" AND at < ").bind(until.into());
        }
        sql.newest_first(None, limit);
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(change).collect()
    }

    /// The entries about one record made after the entry `(at, id)`, oldest first.
    pub async fn changes_after(
        &self,
        org_id: &OrgId,
        entity: &str,
        record_id: &str,
        (at, id): (Millis, &str),
    ) -> StoreResult<Vec<Change>> {
        let sql = format!(
            "SELECT {CHANGE_COLS} FROM changes WHERE org_id = $1 AND entity = $2 AND record_id = $3 \
             AND (at, id) > ($4, $5) ORDER BY at, id"
        );
        let binds = [org_id.into(), entity.into(), record_id.into(), at.into(), id.into()];
        self.db.fetch(&sql, &binds).await?.into_iter().map(change).collect()
    }
}

impl Tx {
    /// Whether a record is live (`Some(false)`), in the trash (`Some(true)`) or gone.
    pub async fn record_trashed(
        &mut self,
        org_id: &OrgId,
        entity: rapport_tools::Entity,
        id: &str,
    ) -> StoreResult<Option<bool>> {
        let sql = format!("SELECT deleted_at FROM {} WHERE org_id = $1 AND id = $2", entity.def().plural);
        let row = self.fetch_one(&sql, &[org_id.into(), id.into()]).await?;
        row.map(|mut r| r.int("deleted_at").map(|d| d.is_some())).transpose()
    }
}
