//! `last_activity_at` on contacts, companies and deals (SPEC 5): the newest `occurred_at`
//! among the live activities about the record or, for a contact, that list it among their
//! participants. Every write of activities in a transaction (insert, update, trash,
//! restore, a merge's repointing) ends by recomputing it for the records those activities
//! bore on before and after, so it is exact whatever path wrote them: tools, REST, an
//! import, an undo.

use std::collections::{BTreeMap, BTreeSet};

use rapport_tools::Entity;
use rapport_tools::entities::activity::ABOUT;
use serde_json::Value;

use super::db::Tx;
use super::query::{Sql, SqlValue, table};
use super::records::ids_in;
use super::{Dialect, OrgId, Record, RecordId, StoreResult};

/// Below any time: SQLite's `max` of a missing value.
const NONE: i64 = i64::MIN + 1;

/// `record_links` read by what the links point to: without statistics SQLite prefers the
/// primary key's `(org_id, from_entity)` prefix, every activity's links, at a million
/// activities a walk of hundreds of thousands of rows per lookup.
pub(super) fn links_to(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "record_links INDEXED BY record_links_to",
        Dialect::Postgres => "record_links",
    }
}

/// Records an activity bears on: `(entity, id)`.
pub(super) type Targets = BTreeSet<(Entity, String)>;

/// The records `r` (an activity) bears on as it is written.
pub(super) fn targets_of(r: &Record, into: &mut Targets) {
    if r.entity != Entity::Activity {
        return;
    }
    let about = r.get("record");
    if let (Some(e), Some(id)) = (about["entity"].as_str().and_then(Entity::parse), about["id"].as_str()) {
        into.insert((e, id.to_owned()));
    }
    if let Value::Array(ids) = r.get("participant_ids") {
        into.extend(ids.iter().filter_map(Value::as_str).map(|id| (Entity::Contact, id.to_owned())));
    }
}

impl Tx {
    /// The records the stored activities `ids` bear on, as the database holds them now
    /// (live or trashed).
    pub(super) async fn activity_targets(&mut self, org_id: &OrgId, ids: &[RecordId]) -> StoreResult<Targets> {
        let mut found = Targets::new();
        if ids.is_empty() {
            return Ok(found);
        }
        let mut sql = Sql::new(self.dialect());
        sql.push("SELECT record_entity AS e, record_id AS id FROM activities");
        // By primary key, not along the organization's rows (`ids_in`).
        ids_in(&mut sql, org_id, ids);
        sql.push(
            " AND record_id IS NOT NULL UNION SELECT to_entity AS e, to_id AS id FROM record_links WHERE org_id = ",
        );
        sql.bind(org_id.into());
        sql.push(" AND from_entity = 'activity' AND from_id IN ");
        sql.bind_list(ids.iter().map(SqlValue::from));
        for mut row in self.fetch(&sql.text, &sql.binds).await? {
            if let Some(e) = Entity::parse(&row.need_text("e")?) {
                found.insert((e, row.need_text("id")?));
            }
        }
        Ok(found)
    }

    /// Sets `last_activity_at` of `targets` from the live activities as this transaction
    /// sees them.
    pub(super) async fn refresh_last_activity(&mut self, org_id: &OrgId, targets: &Targets) -> StoreResult<()> {
        let mut by_entity: BTreeMap<Entity, Vec<&str>> = BTreeMap::new();
        for (e, id) in targets.iter().filter(|(e, _)| ABOUT.contains(e)) {
            by_entity.entry(*e).or_default().push(id);
        }
        for (entity, ids) in by_entity {
            for chunk in ids.chunks(500) {
                let t = table(entity);
                let about = format!(
                    "(SELECT MAX(a.occurred_at) FROM activities a WHERE a.org_id = {t}.org_id \
                     AND a.record_entity = '{entity}' AND a.record_id = {t}.id AND a.deleted_at IS NULL)"
                );
                let newest = if entity == Entity::Contact {
                    let links = links_to(self.dialect());
                    let with = format!(
                        "(SELECT MAX(a.occurred_at) FROM {links} JOIN activities a ON a.org_id = record_links.org_id \
                         AND a.id = record_links.from_id WHERE record_links.org_id = {t}.org_id \
                         AND record_links.from_entity = 'activity' AND record_links.to_entity = 'contact' \
                         AND record_links.to_id = {t}.id AND a.deleted_at IS NULL)"
                    );
                    match self.dialect() {
                        // PostgreSQL's GREATEST skips NULLs; SQLite's two-argument max does not.
                        Dialect::Postgres => format!("GREATEST({about}, {with})"),
                        Dialect::Sqlite => {
                            format!("NULLIF(max(COALESCE({about}, {NONE}), COALESCE({with}, {NONE})), {NONE})")
                        }
                    }
                } else {
                    about
                };
                let mut sql = Sql::new(self.dialect());
                sql.push(&format!("UPDATE {t} SET last_activity_at = {newest}"));
                let ids: Vec<RecordId> = chunk.iter().map(|id| RecordId::from(*id)).collect();
                ids_in(&mut sql, org_id, &ids);
                self.execute(&sql.text, &sql.binds).await?;
            }
        }
        Ok(())
    }
}
