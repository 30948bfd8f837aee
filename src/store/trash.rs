//! The trash: deleted records keep their rows with `deleted_at` set until they are purged,
//! along with the references to them that were cleared, so a restore brings those back.
//! Merges point every reference at the kept record.

use rapport_tools::{Entity, FieldType, Storage};

use super::db::Tx;
use super::query::{Sql, table};
use super::records::ids_in;
use super::*;
use crate::time::Millis;

/// A reference that pointed at a trashed record: `entity`'s record `id` had `field` set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClearedRef {
    pub entity: Entity,
    pub id: String,
    pub field: String,
}

/// Every column in any entity that can point at a record of `entity`: to-one relations
/// (`company_id`), and record references (`record`) with their entity column.
fn references_to(entity: Entity) -> Vec<(Entity, &'static str, Option<String>)> {
    let mut out = Vec::new();
    for e in Entity::ALL {
        for f in e.def().columns() {
            match f.ty {
                FieldType::Relation if f.target == Some(entity) => out.push((*e, f.name, None)),
                FieldType::RecordRef => out.push((*e, f.name, Some(format!("{}_entity", f.name)))),
                _ => {}
            }
        }
    }
    out
}

/// The id column of a reference: `company_id` itself, or `record_id` for `record`.
fn id_col(field: &str, entity_col: &Option<String>) -> String {
    match entity_col {
        Some(_) => format!("{field}_id"),
        None => field.to_owned(),
    }
}

impl Tx {
    /// Moves live records to the trash, all or none (`NotFound` when one is not live).
    /// To-one references other live records hold to them are cleared (each such record's
    /// `updated_at` set to `at`) and remembered on the trashed record. Answers the cleared
    /// references with the record each pointed at; the caller appends their change
    /// entries along with `changes` in this same transaction.
    pub async fn trash_records(
        &mut self,
        org_id: &OrgId,
        entity: Entity,
        ids: &[RecordId],
        at: Millis,
    ) -> StoreResult<Vec<(ClearedRef, RecordId)>> {
        let mut sql = Sql::new(self.dialect());
        sql.push(&format!("UPDATE {} SET deleted_at = ", table(entity)));
        sql.bind(at.into());
        ids_in(&mut sql, org_id, ids);
        sql.push(" AND deleted_at IS NULL");
        if self.execute(&sql.text, &sql.binds).await? != ids.len() as u64 {
            return Err(StoreError::NotFound);
        }
        if entity == Entity::Activity {
            let targets = self.activity_targets(org_id, ids).await?;
            self.refresh_last_activity(org_id, &targets).await?;
        }
        let mut cleared = Vec::new();
        for (child, field, entity_col) in references_to(entity) {
            // Notes and tasks stay with their record, trashed or not.
            if entity_col.is_some() {
                continue;
            }
            let t = table(child);
            let mut sql = Sql::new(self.dialect());
            sql.push(&format!("SELECT id, {field} FROM {t} WHERE org_id = "));
            sql.bind(org_id.into());
            sql.push(&format!(" AND deleted_at IS NULL AND {field} IN "));
            sql.bind_list(ids.iter().map(SqlValue::from));
            let found = self.fetch(&sql.text, &sql.binds).await?;
            if found.is_empty() {
                continue;
            }
            let mut sql = Sql::new(self.dialect());
            sql.push(&format!("UPDATE {t} SET {field} = NULL, updated_at = "));
            sql.bind(at.into());
            sql.push(" WHERE org_id = ");
            sql.bind(org_id.into());
            sql.push(&format!(" AND deleted_at IS NULL AND {field} IN "));
            sql.bind_list(ids.iter().map(SqlValue::from));
            self.execute(&sql.text, &sql.binds).await?;
            for mut r in found {
                let r_id = r.need_text("id")?;
                let parent = RecordId::from(r.need_text(field)?);
                cleared.push((ClearedRef { entity: child, id: r_id, field: field.to_owned() }, parent));
            }
        }
        for id in ids {
            let refs: Vec<&ClearedRef> = cleared.iter().filter(|(_, p)| p == id).map(|(c, _)| c).collect();
            if !refs.is_empty() {
                self.execute(
                    &format!("UPDATE {} SET trashed_refs = $3 WHERE org_id = $1 AND id = $2", table(entity)),
                    &[org_id.into(), id.into(), json_text(&refs).into()],
                )
                .await?;
            }
        }
        Ok(cleared)
    }

    /// Brings trashed records back, all or none: `NotFound` when one is not in the trash
    /// or was trashed before `since`. The references cleared when they were trashed are set
    /// again where still empty; answered for their change entries.
    pub async fn restore_records(
        &mut self,
        org_id: &OrgId,
        entity: Entity,
        ids: &[RecordId],
        since: Millis,
        at: Millis,
    ) -> StoreResult<Vec<(ClearedRef, RecordId)>> {
        let mut sql = Sql::new(self.dialect());
        sql.push(&format!("SELECT id, trashed_refs FROM {}", table(entity)));
        ids_in(&mut sql, org_id, ids);
        sql.push(" AND deleted_at IS NOT NULL AND deleted_at >= ");
        sql.bind(since.into());
        let rows = self.fetch(&sql.text, &sql.binds).await?;
        if rows.len() != ids.len() {
            return Err(StoreError::NotFound);
        }
        let mut sql = Sql::new(self.dialect());
        sql.push(&format!("UPDATE {} SET deleted_at = NULL, trashed_refs = NULL, updated_at = ", table(entity)));
        sql.bind(at.into());
        ids_in(&mut sql, org_id, ids);
        let what = match entity.def().unique {
            Some(f) => format!("a live {entity} with the same {f}"),
            None => format!("a live {entity} with this id"),
        };
        self.execute(&sql.text, &sql.binds).await.map_err(|e| e.on_write(&what))?;
        // A restored activity counts again; a restored contact may have lost its activities
        // to the record it was merged into.
        let targets = match entity {
            Entity::Activity => self.activity_targets(org_id, ids).await?,
            _ => ids.iter().map(|id| (entity, id.as_str().to_owned())).collect(),
        };
        self.refresh_last_activity(org_id, &targets).await?;
        let references = references_to(entity);
        let mut relinked = Vec::new();
        for mut r in rows {
            let parent = RecordId::from(r.need_text("id")?);
            let Some(refs) = r.text("trashed_refs")? else { continue };
            let refs: Vec<ClearedRef> = parse_json(&refs, "trashed_refs")?;
            for c in refs {
                if !references.iter().any(|(e, f, _)| *e == c.entity && *f == c.field) {
                    continue;
                }
                let done = self
                    .execute(
                        &format!(
                            "UPDATE {t} SET {f} = $3, updated_at = $4 WHERE org_id = $1 AND id = $2 \
                             AND {f} IS NULL AND deleted_at IS NULL",
                            t = table(c.entity),
                            f = c.field
                        ),
                        &[org_id.into(), c.id.as_str().into(), (&parent).into(), at.into()],
                    )
                    .await?;
                if done == 1 {
                    relinked.push((c, parent.clone()));
                }
            }
        }
        Ok(relinked)
    }

    /// Points every reference to the `merged` records at `keep`: to-one relations, record
    /// references and links. Answers each record whose column changed, with the field and
    /// the merged record it pointed at.
    pub async fn repoint(
        &mut self,
        org_id: &OrgId,
        entity: Entity,
        merged: &[RecordId],
        keep: &RecordId,
        at: Millis,
    ) -> StoreResult<Vec<(ClearedRef, RecordId)>> {
        let mut moved = Vec::new();
        for (child, field, entity_col) in references_to(entity) {
            let id_col = id_col(field, &entity_col);
            let t = table(child);
            let mut filter = Sql::new(self.dialect());
            filter.push(" WHERE org_id = ");
            filter.bind(org_id.into());
            if let Some(col) = &entity_col {
                filter.push(&format!(" AND {col} = "));
                filter.bind(entity.as_str().into());
            }
            filter.push(&format!(" AND {id_col} IN "));
            filter.bind_list(merged.iter().map(SqlValue::from));
            let mut sql = Sql::new(self.dialect());
            sql.push(&format!("SELECT id, {id_col} FROM {t}"));
            sql.push(&filter.text);
            sql.binds = filter.binds.clone();
            let found = self.fetch(&sql.text, &sql.binds).await?;
            if found.is_empty() {
                continue;
            }
            // `$1` and `$2` come first; the filter's placeholders are renumbered after them.
            let mut sql = Sql::new(self.dialect());
            sql.push(&format!("UPDATE {t} SET {id_col} = "));
            sql.bind(keep.into());
            sql.push(", updated_at = ");
            sql.bind(at.into());
            sql.push(" WHERE org_id = ");
            sql.bind(org_id.into());
            if let Some(col) = &entity_col {
                sql.push(&format!(" AND {col} = "));
                sql.bind(entity.as_str().into());
            }
            sql.push(&format!(" AND {id_col} IN "));
            sql.bind_list(merged.iter().map(SqlValue::from));
            self.execute(&sql.text, &sql.binds).await?;
            for mut r in found {
                let id = r.need_text("id")?;
                let from = RecordId::from(r.need_text(&id_col)?);
                moved.push((ClearedRef { entity: child, id, field: field.to_owned() }, from));
            }
        }
        // Links to a merged record move to the kept one, unless it is linked already.
        for e in Entity::ALL {
            for f in e.def().fields.iter().filter(|f| f.storage == Storage::Links && f.target == Some(entity)) {
                let mut sql = Sql::new(self.dialect());
                sql.push("SELECT from_id, to_id FROM record_links WHERE org_id = ");
                sql.bind(org_id.into());
                sql.push(" AND from_entity = ");
                sql.bind(e.as_str().into());
                sql.push(" AND to_entity = ");
                sql.bind(entity.as_str().into());
                sql.push(" AND to_id IN ");
                sql.bind_list(merged.iter().map(SqlValue::from));
                for mut r in self.fetch(&sql.text, &sql.binds).await? {
                    let from_id = r.need_text("from_id")?;
                    let to_id = RecordId::from(r.need_text("to_id")?);
                    self.add_link(org_id, (*e, &from_id), (entity, keep.as_str()), at).await?;
                    self.execute(
                        "DELETE FROM record_links WHERE org_id = $1 AND from_entity = $2 AND from_id = $3 \
                         AND to_entity = $4 AND to_id = $5",
                        &[
                            org_id.into(),
                            e.as_str().into(),
                            from_id.as_str().into(),
                            entity.as_str().into(),
                            (&to_id).into(),
                        ],
                    )
                    .await?;
                    moved.push((ClearedRef { entity: *e, id: from_id, field: f.name.to_owned() }, to_id));
                }
            }
        }
        // The kept record now has the merged ones' activities.
        let kept = std::iter::once((entity, keep.as_str().to_owned())).collect();
        self.refresh_last_activity(org_id, &kept).await?;
        Ok(moved)
    }

    /// Removes for good the records trashed before `before`, in every organization, with
    /// their links; answers `(org, entity, id)` of each, for the change log.
    pub async fn purge(&mut self, before: Millis) -> StoreResult<Vec<(OrgId, Entity, RecordId)>> {
        let mut purged = Vec::new();
        for e in Entity::ALL {
            let t = table(*e);
            let rows = self
                .fetch(
                    &format!("SELECT org_id, id FROM {t} WHERE deleted_at IS NOT NULL AND deleted_at < $1"),
                    &[before.into()],
                )
                .await?;
            if rows.is_empty() {
                continue;
            }
            for mut r in rows {
                let org = OrgId::from(r.need_text("org_id")?);
                let id = RecordId::from(r.need_text("id")?);
                self.execute(
                    "DELETE FROM record_links WHERE org_id = $1 AND ((from_entity = $2 AND from_id = $3) \
                     OR (to_entity = $2 AND to_id = $3))",
                    &[(&org).into(), e.as_str().into(), (&id).into()],
                )
                .await?;
                purged.push((org, *e, id));
            }
            self.execute(
                &format!("DELETE FROM {t} WHERE deleted_at IS NOT NULL AND deleted_at < $1"),
                &[before.into()],
            )
            .await?;
        }
        Ok(purged)
    }
}
