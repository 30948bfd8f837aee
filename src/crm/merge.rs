//! `merge_records`: duplicates folded into one record. Relations, notes and tasks move
//! to the kept record, tags are joined, its empty fields are filled from the merged ones
//! (in the order given), and the merged records go to the trash. One transaction.

use crate::store::ChangeAction;
use rapport_tools::Entity;
use rapport_tools::inputs::{GetRecordsInput, MergeRecordsInput, MergeResult};
use rapport_tools::records::RecordRef;
use serde_json::Value;

use super::records::{get, unique_ids};
use super::{CrmError, Principal, changes};
use crate::store::{Change, RecordId, Store, StoreError};
use crate::time;

/// The entities whose duplicates can be merged.
pub const MERGEABLE: &[Entity] = &[Entity::Contact, Entity::Company];

/// Most records merged in one call.
pub const MAX_MERGE: usize = 20;

pub async fn merge(store: &Store, p: &Principal, input: MergeRecordsInput) -> Result<MergeResult, CrmError> {
    let entity = input.entity;
    if !MERGEABLE.contains(&entity) {
        return Err(CrmError::invalid("merge_records merges contacts or companies"));
    }
    p.require(entity.def().write)?;
    p.require(entity.def().delete)?;
    let keep_id = RecordId::from(input.keep_id.as_str());
    let merge_ids: Vec<RecordId> = unique_ids(&input.merge_ids).into_iter().filter(|i| *i != keep_id).collect();
    if merge_ids.is_empty() || merge_ids.len() > MAX_MERGE {
        return Err(CrmError::invalid(format!("`merge_ids` takes 1 to {MAX_MERGE} ids other than `keep_id`")));
    }
    let mut all = vec![keep_id.clone()];
    all.extend(merge_ids.iter().cloned());
    for _attempt in 0..5 {
        let mut found = store.get_records(p.org_id(), entity, &all).await?;
        let missing: Vec<(Entity, String)> = all
            .iter()
            .filter(|id| !found.iter().any(|r| &r.id == *id))
            .map(|id| (entity, id.as_str().to_owned()))
            .collect();
        if !missing.is_empty() {
            return Err(CrmError::NotFound(missing));
        }
        let pos = found.iter().position(|r| r.id == keep_id).expect("found above");
        let before = found.remove(pos);
        // Fill in the order the caller gave.
        found.sort_by_key(|r| merge_ids.iter().position(|i| *i == r.id));
        let mut kept = before.clone();
        let unique = entity.def().unique;
        for m in &found {
            for f in entity.def().stored() {
                let empty =
                    kept.values.get(f.name).is_none_or(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty));
                match m.values.get(f.name) {
                    // A unique value stays with the merged record, which keeps it in the trash.
                    Some(_) if Some(f.name) == unique => {}
                    Some(Value::Array(list)) => {
                        let mut mine = kept.get(f.name).as_array().cloned().unwrap_or_default();
                        for v in list {
                            if !mine.contains(v) {
                                mine.push(v.clone());
                            }
                        }
                        kept.values.insert(f.name.into(), Value::Array(mine));
                    }
                    Some(v) if empty && !v.is_null() => {
                        kept.values.insert(f.name.into(), v.clone());
                    }
                    _ => {}
                }
            }
            for (k, v) in &m.custom {
                kept.custom.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let now = time::now_ms();
        kept.updated_at = now.max(before.updated_at + 1);
        let mut diff = changes::diff(Some(&before), &kept);
        let merged: Vec<String> = merge_ids.iter().map(|i| i.as_str().to_owned()).collect();
        diff.insert("merged_ids".into(), changes::pair(Value::Null, merged.clone()));
        let mut entries: Vec<Change> =
            vec![changes::entry(p, kept.updated_at, ChangeAction::Merged, entity.into(), keep_id.as_str(), diff)];
        for id in &merge_ids {
            let d = changes::one("merged_into", Value::Null, keep_id.as_str());
            entries.push(changes::entry(p, now, ChangeAction::Deleted, entity.into(), id.as_str(), d));
        }
        let mut tx = store.begin().await?;
        let moved = tx.repoint(p.org_id(), entity, &merge_ids, &keep_id, now).await?;
        for (c, from) in moved {
            let diff = changes::one(&c.field, from.as_str(), keep_id.as_str());
            entries.push(changes::entry(p, now, ChangeAction::Updated, c.entity.into(), &c.id, diff));
        }
        match tx.update_records(p.org_id(), &[(kept.clone(), before.updated_at)], &[]).await {
            Ok(()) => {}
            Err(StoreError::Stale) => {
                store.catch_up(tx).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        tx.trash_records(p.org_id(), entity, &merge_ids, now).await?;
        tx.append_changes(&entries).await?;
        tx.commit().await?;
        let wanted = RecordRef { entity, id: keep_id.as_str().to_owned() };
        let mut got = get(store, p, GetRecordsInput { records: vec![wanted], fields: None }).await?;
        let record = got.items.pop().unwrap_or_default();
        return Ok(MergeResult { record, merged });
    }
    Err(CrmError::Conflict("these records are being changed by someone else right now; try again".into()))
}
