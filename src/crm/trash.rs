//! The trash: `delete_records` moves records there, `restore_records` brings them back
//! within `RAPPORT_TRASH_DAYS`, and a periodic purge removes them for good.

use crate::store::ChangeAction;
use rapport_tools::Entity;
use rapport_tools::inputs::{DeleteRecordsInput, DeleteResult, RestoreRecordsInput, RestoreResult};
use serde_json::{Map, Value};

use super::changes;
use super::records::{batch_len, unique_ids};
use super::{CrmError, Principal};
use crate::store::{Change, ChangeActor, RecordId, Store, StoreError};
use crate::time::{self, DAY_MS, Millis};

fn missing(entity: Entity, ids: &[RecordId], found: &[RecordId]) -> Vec<(Entity, String)> {
    ids.iter().filter(|id| !found.contains(id)).map(|id| (entity, id.as_str().to_owned())).collect()
}

/// Moves records to the trash, all or none. References other records hold to them are
/// cleared, each such record getting its own change entry, and come back on a restore.
pub async fn delete(store: &Store, p: &Principal, input: DeleteRecordsInput) -> Result<DeleteResult, CrmError> {
    let entity = input.entity;
    p.require(entity.def().delete)?;
    batch_len("ids", input.ids.len())?;
    let ids = unique_ids(&input.ids);
    let found: Vec<RecordId> = store.get_records(p.org_id(), entity, &ids).await?.into_iter().map(|r| r.id).collect();
    let missing = missing(entity, &ids, &found);
    if !missing.is_empty() {
        return Err(CrmError::NotFound(missing));
    }
    let now = time::now_ms();
    let mut tx = store.begin().await?;
    let cleared = match tx.trash_records(p.org_id(), entity, &ids, now).await {
        // Deleted by someone else between the check and now: nothing was deleted.
        Err(StoreError::NotFound) => {
            return Err(CrmError::Conflict(
                "some of these records were deleted meanwhile; nothing was deleted, search again".into(),
            ));
        }
        other => other?,
    };
    let mut entries: Vec<Change> = ids
        .iter()
        .map(|id| changes::entry(p, now, ChangeAction::Deleted, entity.into(), id.as_str(), Map::new()))
        .collect();
    for (c, parent) in cleared {
        let diff = changes::one(&c.field, parent.as_str(), Value::Null);
        entries.push(changes::entry(p, now, ChangeAction::Updated, c.entity.into(), &c.id, diff));
    }
    tx.append_changes(&entries).await?;
    tx.commit().await?;
    Ok(DeleteResult { entity, deleted: ids.into_iter().map(RecordId::into_string).collect() })
}

/// Brings records back from the trash with the references they had, all or none.
pub async fn restore(
    store: &Store,
    p: &Principal,
    input: RestoreRecordsInput,
    trash_days: u32,
) -> Result<RestoreResult, CrmError> {
    let entity = input.entity;
    p.require(entity.def().delete)?;
    batch_len("ids", input.ids.len())?;
    let ids = unique_ids(&input.ids);
    let now = time::now_ms();
    let since = now - i64::from(trash_days) * DAY_MS;
    let mut tx = store.begin().await?;
    let relinked = match tx.restore_records(p.org_id(), entity, &ids, since, now).await {
        Err(StoreError::NotFound) => {
            return Err(CrmError::invalid(format!(
                "not all of these {} are in the trash: a record is restorable for {trash_days} days after it was deleted, then purged. Nothing was restored; get_records shows which are live",
                entity.plural()
            )));
        }
        Err(StoreError::Conflict(what)) => {
            return Err(CrmError::Conflict(format!("{what} exists; change or delete it first, then restore")));
        }
        other => other?,
    };
    let mut entries: Vec<Change> = ids
        .iter()
        .map(|id| changes::entry(p, now, ChangeAction::Restored, entity.into(), id.as_str(), Map::new()))
        .collect();
    for (c, parent) in relinked {
        let diff = changes::one(&c.field, Value::Null, parent.as_str());
        entries.push(changes::entry(p, now, ChangeAction::Updated, c.entity.into(), &c.id, diff));
    }
    tx.append_changes(&entries).await?;
    tx.commit().await?;
    Ok(RestoreResult { entity, restored: ids.into_iter().map(RecordId::into_string).collect() })
}

/// Removes for good what was trashed more than `trash_days` ago, in every organization.
pub async fn purge(store: &Store, trash_days: u32, now: Millis) -> Result<usize, CrmError> {
    let mut tx = store.begin().await?;
    let purged = tx.purge(now - i64::from(trash_days) * DAY_MS).await?;
    // One purge is one call of the server's own.
    let via = crate::store::Via::call(None, "housekeeping");
    let system = ChangeActor {
        kind: "system",
        id: None,
        name: Some("trash purge".into()),
        user_email: None,
        user_id: None,
        key_id: None,
    };
    let entries: Vec<Change> = purged
        .iter()
        .map(|(org, entity, id)| Change {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org.clone(),
            at: now,
            action: ChangeAction::Purged,
            entity: entity.into(),
            record_id: id.as_str().to_owned(),
            actor: system.clone(),
            via: via.clone(),
            reverts: Vec::new(),
            changes: Map::new(),
        })
        .collect();
    let fields = tx.purge_custom_fields(now - i64::from(trash_days) * DAY_MS).await?;
    let field_entries = fields.iter().map(|(org, entity, key)| Change {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: org.clone(),
        at: now,
        action: ChangeAction::Purged,
        entity: crate::store::ChangeEntity::CustomField,
        record_id: format!("{entity}.{key}"),
        actor: system.clone(),
        via: via.clone(),
        reverts: Vec::new(),
        changes: Map::new(),
    });
    let entries: Vec<Change> = entries.into_iter().chain(field_entries).collect();
    tx.append_changes(&entries).await?;
    tx.commit().await?;
    Ok(purged.len() + fields.len())
}
