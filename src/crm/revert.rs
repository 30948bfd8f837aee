//! Undo (SPEC 12): a set of change entries (given ids, one call's, or what one key did in a
//! time window) is reverted by applying the inverse of each, newest first, in one
//! transaction. The revert is itself change entries naming what they revert, so it can be
//! reverted too.
//!
//! A change that something outside the set touched since is a conflict (a field changed
//! since, a created record changed since, a deleted record purged, an inverse that would
//! break a uniqueness rule). Without `force` any conflict refuses the whole revert and lists
//! them; with `force` every inverse without a conflict is applied and no later change is
//! ever overwritten.

use crate::store::{ChangeAction, ChangeEntity, KeyId};
use std::collections::{HashMap, HashSet};

use rapport_tools::inputs::{RevertChangesInput, RevertConflict, RevertResult};
use rapport_tools::{Entity, FieldType, Scope, Storage};
use serde_json::{Map, Value};

use super::{CrmError, Principal, changes};
use crate::store::{
    Change, CustomFieldDef, CustomType, Pipeline, Record, RecordId, RevertSelection, Store, StoreError, Tx,
};
use crate::time::{self, Millis};

/// Most entries one revert takes.
pub const MAX_ENTRIES: u32 = 500;

/// One field to set back: its name (`custom.KEY` for a custom field) and its value before.
#[derive(Debug, Clone)]
struct FieldBack {
    name: String,
    before: Value,
    after: Value,
}

/// The inverse of one entry.
#[derive(Debug, Clone)]
enum Inverse {
    /// Set fields of a record back (an update, a link or unlink, the kept side of a merge).
    Fields { entity: Entity, id: String, fields: Vec<FieldBack> },
    /// Move a created or restored record to the trash.
    Trash { entity: Entity, id: String },
    /// Bring a deleted record back.
    Restore { entity: Entity, id: String },
    /// Remove a field a change created (to the trash, with its values).
    DropField { entity: Entity, key: String },
    /// Set a field's label and options back.
    FieldBack { entity: Entity, key: String, label: Option<String>, options: Option<Vec<String>> },
    /// Bring a deleted field back (from the trash with its values, else without them).
    RestoreField {
        entity: Entity,
        key: String,
        ty: Option<String>,
        label: Option<String>,
        options: Option<Vec<String>>,
    },
    /// Remove a pipeline a change created.
    DropPipeline { name: String },
    /// Set a pipeline's name and stages back.
    PipelineBack { name: String, before_name: Option<String>, stages: Option<Value> },
    /// Nothing to undo (the other side of a link, which the holder's entry undoes).
    Nothing,
}

fn conflict(c: &Change, reason: impl Into<String>) -> RevertConflict {
    RevertConflict { change_id: c.id.clone(), reason: reason.into() }
}

/// Which entries the input names.
fn selection(input: &RevertChangesInput) -> Result<RevertSelection, CrmError> {
    let instant = |v: &Option<String>, name: &str| -> Result<Option<Millis>, CrmError> {
        v.as_deref()
            .map(|s| {
                time::parse_instant(s.trim())
                    .ok_or_else(|| CrmError::invalid(format!("`{name}` takes a time such as 2026-01-31T09:00:00Z")))
            })
            .transpose()
    };
    let ids = input.change_ids.clone().unwrap_or_default();
    let ways = [!ids.is_empty(), input.request_id.is_some(), input.key_id.is_some()].iter().filter(|w| **w).count();
    if ways != 1 {
        return Err(CrmError::invalid(
            "name the changes one way: `change_ids`, a `request_id`, or a `key_id` with `since` (and `until`)",
        ));
    }
    if input.key_id.is_some() && input.since.is_none() {
        return Err(CrmError::invalid("a revert by `key_id` needs `since`: what the key did from when"));
    }
    if ids.len() > MAX_ENTRIES as usize {
        return Err(CrmError::invalid(format!("`change_ids` takes at most {MAX_ENTRIES} ids")));
    }
    Ok(RevertSelection {
        ids,
        request_id: input.request_id.clone(),
        key_id: input.key_id.as_deref().map(KeyId::from),
        since: instant(&input.since, "since")?,
        until: instant(&input.until, "until")?,
    })
}

/// The fields of an entry that can be set back: the entity's stored fields and custom fields;
/// what only describes the change (`merged_ids`, the other side of a link) is left out.
fn fields_back(entity: Entity, c: &Change) -> Vec<FieldBack> {
    c.changes
        .iter()
        .filter(|(name, _)| name.starts_with("custom.") || entity.def().stored().any(|f| f.name == name.as_str()))
        .map(|(name, v)| FieldBack {
            name: name.clone(),
            before: v.get("before").cloned().unwrap_or(Value::Null),
            after: v.get("after").cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// The inverse of `c`, or why it cannot be undone. `later` are the entries about the same
/// record, outside the set, made after it.
fn inverse(c: &Change, later: &[Change]) -> Result<Inverse, String> {
    let touched_since = |field: &str| later.iter().find(|l| l.changes.contains_key(field));
    if c.action == ChangeAction::Purged {
        return Err("it removed the record for good; nothing can bring it back".into());
    }
    if let Some(entity) = c.entity.record() {
        let id = c.record_id.clone();
        let changed_since =
            |what: &str| later.first().map(|l| format!("the {what} was changed since (change {})", l.id));
        return match c.action {
            ChangeAction::Created | ChangeAction::Restored => match changed_since("record") {
                Some(why) => Err(why),
                None => Ok(Inverse::Trash { entity, id }),
            },
            ChangeAction::Deleted => match changed_since("record") {
                Some(why) => Err(why),
                None => Ok(Inverse::Restore { entity, id }),
            },
            _ => {
                let fields = fields_back(entity, c);
                if fields.is_empty() {
                    return Ok(Inverse::Nothing);
                }
                if let Some(f) = fields.iter().find_map(|f| touched_since(&f.name).map(|l| (f, l))) {
                    return Err(format!("`{}` was changed since (change {})", f.0.name, f.1.id));
                }
                Ok(Inverse::Fields { entity, id, fields })
            }
        };
    }
    // A purge after a custom field's deletion is no conflict: the field comes back empty.
    let field_purge = |l: &&Change| {
        c.entity == ChangeEntity::CustomField && c.action == ChangeAction::Deleted && l.action == ChangeAction::Purged
    };
    if let Some(l) = later.iter().find(|l| !field_purge(l)) {
        return Err(format!("the {} was changed since (change {})", c.entity.words(), l.id));
    }
    let before = |k: &str| c.changes.get(k).and_then(|v| v.get("before")).cloned();
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    match (c.entity, c.action) {
        (ChangeEntity::CustomField, action) => {
            let (entity, key) = c
                .record_id
                .split_once('.')
                .and_then(|(e, k)| Entity::parse(e).map(|e| (e, k.to_owned())))
                .ok_or_else(|| format!("`{}` names no custom field", c.record_id))?;
            Ok(match action {
                ChangeAction::Created => Inverse::DropField { entity, key },
                ChangeAction::Updated => Inverse::FieldBack {
                    entity,
                    key,
                    label: text(before("label")),
                    options: before("options").and_then(|o| serde_json::from_value(o).ok()),
                },
                ChangeAction::Deleted => Inverse::RestoreField {
                    entity,
                    key,
                    ty: text(before("type")),
                    label: text(before("label")),
                    options: before("options").and_then(|o| serde_json::from_value(o).ok()),
                },
                other => return Err(format!("a custom field's `{other}` has no inverse")),
            })
        }
        (ChangeEntity::Pipeline, ChangeAction::Created) => Ok(Inverse::DropPipeline { name: c.record_id.clone() }),
        (ChangeEntity::Pipeline, ChangeAction::Updated) => Ok(Inverse::PipelineBack {
            name: c.record_id.clone(),
            before_name: text(before("name")),
            stages: before("stages"),
        }),
        (entity, action) => Err(format!("a {entity}'s `{action}` has no inverse")),
    }
}

/// The scopes an inverse takes: what the change itself took.
fn needs(inv: &Inverse) -> Vec<Scope> {
    match inv {
        Inverse::Fields { entity, .. } => vec![entity.def().write],
        Inverse::Trash { entity, .. } | Inverse::Restore { entity, .. } => vec![entity.def().delete],
        Inverse::DropField { entity, .. } => vec![Scope::SchemaManage, entity.def().write, entity.def().delete],
        Inverse::FieldBack { .. }
        | Inverse::RestoreField { .. }
        | Inverse::DropPipeline { .. }
        | Inverse::PipelineBack { .. } => vec![Scope::SchemaManage],
        Inverse::Nothing => vec![],
    }
}

/// Sets fields back on a record: built-in ones (a relation moved by a merge swaps one id
/// back), and custom ones.
fn set_back(r: &mut Record, fields: &[FieldBack]) {
    let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
    for f in fields {
        if let Some(key) = f.name.strip_prefix("custom.") {
            if f.before.is_null() {
                r.custom.remove(key);
            } else {
                r.custom.insert(key.to_owned(), f.before.clone());
            }
            continue;
        }
        let def = r.entity.def().field(&f.name);
        let list = def.is_some_and(|d| d.ty == FieldType::Relations || d.storage == Storage::Links);
        match (&f.before, &f.after) {
            // A merge moved one link: put that one back.
            (Value::String(from), Value::String(to)) if list => {
                let mut ids: Vec<Value> = r.get(&f.name).as_array().cloned().unwrap_or_default();
                ids.retain(|v| v.as_str() != Some(to.as_str()));
                if !ids.iter().any(|v| v.as_str() == Some(from.as_str())) {
                    ids.push(Value::String(from.clone()));
                }
                r.values.insert(f.name.clone(), Value::Array(ids));
            }
            (before, _) if empty(before) => {
                r.values.remove(&f.name);
            }
            (before, _) => {
                r.values.insert(f.name.clone(), before.clone());
            }
        }
    }
}

/// An entry of the revert, naming the entry it reverts.
fn reverting(
    p: &Principal,
    at: Millis,
    action: ChangeAction,
    entity: ChangeEntity,
    id: &str,
    diff: Map<String, Value>,
    of: &Change,
) -> Change {
    Change { reverts: vec![of.id.clone()], ..changes::entry(p, at, action, entity, id, diff) }
}

/// Whether restoring `r` would give it a unique value a live record now holds.
async fn unique_taken(store: &Store, p: &Principal, r: &Record) -> Result<Option<String>, CrmError> {
    let Some(field) = r.entity.def().unique else { return Ok(None) };
    let Some(value) = r.text(field) else { return Ok(None) };
    let holders = store.find_by(p.org_id(), r.entity, field, &[value.to_owned()]).await?;
    Ok(holders.iter().find(|h| h.id != r.id).map(|h| format!("its {field} {value} is now {}'s", h.id.as_str())))
}

/// Applies one inverse inside `tx`; answers the entries it wrote, or the conflict found at
/// the last moment (the record is gone, a unique value taken).
async fn apply(
    tx: &mut Tx,
    store: &Store,
    p: &Principal,
    c: &Change,
    inv: &Inverse,
    now: Millis,
    notes: &mut Vec<String>,
) -> Result<Result<Vec<Change>, String>, CrmError> {
    let org = p.org_id();
    Ok(match inv {
        Inverse::Nothing => Ok(vec![]),
        Inverse::Fields { entity, id, fields } => {
            let Some(before) = tx.record_any(org, *entity, id).await? else {
                return Ok(Err("the record is gone".into()));
            };
            if tx.record_trashed(org, *entity, id).await? == Some(true) {
                return Ok(Err("the record is in the trash; restore it first".into()));
            }
            let mut after = before.clone();
            set_back(&mut after, fields);
            let unique_back = fields.iter().any(|f| Some(f.name.as_str()) == entity.def().unique);
            if unique_back && let Some(why) = unique_taken(store, p, &after).await? {
                return Ok(Err(why));
            }
            let diff = changes::diff(Some(&before), &after);
            if diff.is_empty() {
                return Ok(Ok(vec![]));
            }
            after.updated_at = now.max(before.updated_at + 1);
            let entry = reverting(p, after.updated_at, ChangeAction::Updated, entity.into(), id, diff, c);
            tx.update_records(org, &[(after, before.updated_at)], std::slice::from_ref(&entry)).await?;
            Ok(vec![entry])
        }
        Inverse::Trash { entity, id } => {
            if tx.record_trashed(org, *entity, id).await? != Some(false) {
                return Ok(Ok(vec![]));
            }
            let cleared = tx.trash_records(org, *entity, &[RecordId::from(id.as_str())], now).await?;
            let mut entries = vec![reverting(p, now, ChangeAction::Deleted, entity.into(), id, Map::new(), c)];
            for (r, parent) in cleared {
                let diff = changes::one(&r.field, parent.as_str(), Value::Null);
                entries.push(reverting(p, now, ChangeAction::Updated, r.entity.into(), &r.id, diff, c));
            }
            tx.append_changes(&entries).await?;
            Ok(entries)
        }
        Inverse::Restore { entity, id } => {
            match tx.record_trashed(org, *entity, id).await? {
                None => return Ok(Err("the record was purged from the trash".into())),
                Some(false) => return Ok(Ok(vec![])),
                Some(true) => {}
            }
            if let Some(r) = tx.record_any(org, *entity, id).await?
                && let Some(why) = unique_taken(store, p, &r).await?
            {
                return Ok(Err(why));
            }
            let relinked = tx.restore_records(org, *entity, &[RecordId::from(id.as_str())], 0, now).await?;
            let mut entries = vec![reverting(p, now, ChangeAction::Restored, entity.into(), id, Map::new(), c)];
            for (r, parent) in relinked {
                let diff = changes::one(&r.field, Value::Null, parent.as_str());
                entries.push(reverting(p, now, ChangeAction::Updated, r.entity.into(), &r.id, diff, c));
            }
            tx.append_changes(&entries).await?;
            Ok(entries)
        }
        Inverse::DropField { entity, key } => {
            let Some(def) = tx.custom_field(org, *entity, key).await? else {
                return Ok(Err(format!("{entity} has no custom field `{key}` any more")));
            };
            let mut diff = Map::new();
            diff.insert("type".into(), changes::pair(def.field_type.as_str(), Value::Null));
            diff.insert("label".into(), changes::pair(def.label.clone(), Value::Null));
            let entry = reverting(
                p,
                now,
                ChangeAction::Deleted,
                ChangeEntity::CustomField,
                &format!("{entity}.{key}"),
                diff,
                c,
            );
            tx.trash_custom_field(org, &def, now, std::slice::from_ref(&entry)).await?;
            Ok(vec![entry])
        }
        Inverse::FieldBack { entity, key, label, options } => {
            let Some(before) = tx.custom_field(org, *entity, key).await? else {
                return Ok(Err(format!("{entity} has no custom field `{key}` any more")));
            };
            let after = CustomFieldDef {
                label: label.clone().unwrap_or_else(|| before.label.clone()),
                options: options.clone().unwrap_or_else(|| before.options.clone()),
                ..before.clone()
            };
            let mut diff = Map::new();
            if after.label != before.label {
                diff.insert("label".into(), changes::pair(before.label.clone(), after.label.clone()));
            }
            if after.options != before.options {
                diff.insert("options".into(), changes::pair(before.options.clone(), after.options.clone()));
            }
            if diff.is_empty() {
                return Ok(Ok(vec![]));
            }
            let entry = reverting(
                p,
                now,
                ChangeAction::Updated,
                ChangeEntity::CustomField,
                &format!("{entity}.{key}"),
                diff,
                c,
            );
            tx.update_custom_field(org, &after, std::slice::from_ref(&entry)).await?;
            Ok(vec![entry])
        }
        Inverse::RestoreField { entity, key, ty, label, options } => {
            if tx.custom_field(org, *entity, key).await?.is_some() {
                return Ok(Err(format!("{entity} has a custom field `{key}` again; the two cannot share the key")));
            }
            let mut diff = Map::new();
            diff.insert("type".into(), changes::pair(Value::Null, ty.clone()));
            diff.insert("label".into(), changes::pair(Value::Null, label.clone()));
            let record = format!("{entity}.{key}");
            let entry = reverting(p, now, ChangeAction::Created, ChangeEntity::CustomField, &record, diff.clone(), c);
            if tx.restore_custom_field(org, *entity, key, std::slice::from_ref(&entry)).await?.is_some() {
                return Ok(Ok(vec![entry]));
            }
            // Purged from the trash: the field comes back without its values.
            let Some(field_type) = ty.as_deref().and_then(CustomType::parse) else {
                return Ok(Err("the field was purged, and its type is not known to recreate it".into()));
            };
            let options = options.clone().unwrap_or_default();
            if matches!(field_type, CustomType::Select | CustomType::MultiSelect) && options.is_empty() {
                return Ok(Err("the field was purged, and its options are not known to recreate it".into()));
            }
            let def = CustomFieldDef {
                id: uuid::Uuid::now_v7().to_string(),
                entity: *entity,
                key: key.clone(),
                label: label.clone().unwrap_or_else(|| key.clone()),
                field_type,
                options,
            };
            tx.insert_custom_field(org, &def, now, std::slice::from_ref(&entry)).await?;
            notes.push(format!(
                "the custom field {entity}.{key} comes back without its values: they were purged from the trash"
            ));
            Ok(vec![entry])
        }
        Inverse::DropPipeline { name } => {
            let Some(pipeline) = tx.pipeline(org, name).await? else {
                return Ok(Err(format!("there is no pipeline `{name}` any more")));
            };
            let mut diff = Map::new();
            diff.insert(
                "stages".into(),
                changes::pair(serde_json::to_value(&pipeline.stages).unwrap_or_default(), Value::Null),
            );
            let entry = reverting(p, now, ChangeAction::Deleted, ChangeEntity::Pipeline, name, diff, c);
            match tx.delete_pipeline(org, name, std::slice::from_ref(&entry)).await {
                Err(StoreError::Conflict(what)) => return Ok(Err(format!("{what} stays"))),
                other => other?,
            }
            Ok(vec![entry])
        }
        Inverse::PipelineBack { name, before_name, stages } => {
            let Some(current) = tx.pipeline(org, name).await? else {
                return Ok(Err(format!("there is no pipeline `{name}` any more")));
            };
            let mut after = Pipeline { updated_at: now, ..current.clone() };
            if let Some(n) = before_name {
                after.name = n.clone();
            }
            if let Some(s) = stages {
                after.stages = serde_json::from_value(s.clone()).map_err(|e| CrmError::invalid(e.to_string()))?;
            }
            let in_use = tx.deals_per_stage(org, name).await?;
            if let Some((stage, n)) = in_use.iter().find(|(s, n)| *n > 0 && after.stage(s).is_none()) {
                return Ok(Err(format!("{n} deals are in stage `{stage}`, which the pipeline had not before")));
            }
            if after.name != name.as_str() && tx.pipeline(org, &after.name).await?.is_some() {
                return Ok(Err(format!("another pipeline is named `{}` now", after.name)));
            }
            let mut diff = Map::new();
            if after.name != current.name {
                diff.insert("name".into(), changes::pair(current.name.clone(), after.name.clone()));
            }
            if after.stages != current.stages {
                let json = |p: &Pipeline| serde_json::to_value(&p.stages).unwrap_or_default();
                diff.insert("stages".into(), changes::pair(json(&current), json(&after)));
            }
            if diff.is_empty() {
                return Ok(Ok(vec![]));
            }
            let entry = reverting(p, now, ChangeAction::Updated, ChangeEntity::Pipeline, &after.name, diff, c);
            tx.update_pipeline(org, name, &after, &[], std::slice::from_ref(&entry)).await?;
            Ok(vec![entry])
        }
    })
}

/// Reverts the changes `input` names (scope `changes:revert`, and the scopes each inverse
/// takes).
pub async fn revert(store: &Store, p: &Principal, input: RevertChangesInput) -> Result<RevertResult, CrmError> {
    p.require_audited(store, Scope::ChangesRevert).await.map_err(CrmError::Forbidden)?;
    let force = input.force.unwrap_or(false);
    let sel = selection(&input)?;
    let entries = store.changes_to_revert(p.org_id(), &sel, MAX_ENTRIES + 1).await?;
    if entries.is_empty() {
        return Err(CrmError::Missing(
            "no change matches; /api/v1/changes (or get_timeline) shows the ids and request ids".into(),
        ));
    }
    if entries.len() > MAX_ENTRIES as usize {
        return Err(CrmError::invalid(format!(
            "more than {MAX_ENTRIES} changes match; revert a narrower set (a shorter window, or one call)"
        )));
    }
    let in_set: HashSet<&str> = entries.iter().map(|c| c.id.as_str()).collect();
    let mut plan: Vec<(&Change, Inverse)> = Vec::new();
    let mut conflicts: Vec<RevertConflict> = Vec::new();
    let mut later_cache: HashMap<(ChangeEntity, String), Vec<Change>> = HashMap::new();
    for c in &entries {
        let key = (c.entity, c.record_id.clone());
        if !later_cache.contains_key(&key) {
            let oldest = entries
                .iter()
                .rfind(|e| (&e.entity, &e.record_id) == (&key.0, &key.1))
                .expect("the entry itself matches");
            let after = store.changes_after(p.org_id(), key.0.as_str(), &key.1, (oldest.at, &oldest.id)).await?;
            later_cache.insert(key.clone(), after);
        }
        let later: Vec<Change> = later_cache[&key]
            .iter()
            .filter(|l| !in_set.contains(l.id.as_str()) && (l.at, &l.id) > (c.at, &c.id))
            .cloned()
            .collect();
        match inverse(c, &later) {
            Ok(inv) => {
                for s in needs(&inv) {
                    p.require(s)?;
                }
                plan.push((c, inv));
            }
            Err(why) => conflicts.push(conflict(c, why)),
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(refusal(&conflicts));
    }
    let mut tx = store.begin().await?;
    let now = time::now_ms();
    let (mut reverted, mut written, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for (c, inv) in &plan {
        match apply(&mut tx, store, p, c, inv, now, &mut notes).await? {
            Ok(entries) => {
                reverted.push(c.id.clone());
                written.extend(entries);
            }
            Err(why) => conflicts.push(conflict(c, why)),
        }
    }
    if !conflicts.is_empty() && !force {
        // Found at the last moment (a record gone, a unique value taken): nothing is written.
        return Err(refusal(&conflicts));
    }
    tx.commit().await?;
    Ok(RevertResult {
        reverted,
        skipped: conflicts,
        notes,
        changes: written.into_iter().map(super::timeline::entry).collect(),
    })
}

fn refusal(conflicts: &[RevertConflict]) -> CrmError {
    let list: Vec<String> = conflicts.iter().map(|c| format!("{}: {}", c.change_id, c.reason)).collect();
    CrmError::Conflict(format!(
        "nothing was reverted: {} change(s) cannot be undone as they stand ({}). Revert the later changes too, or pass force: true to undo the rest",
        conflicts.len(),
        list.join("; ")
    ))
}

/// What `revert` would do, written nowhere: what it would undo, what it would skip (the
/// conflicts, which refuse the revert unless forced) and the change entries it would write.
pub async fn preview(
    store: &Store,
    p: &Principal,
    input: RevertChangesInput,
) -> Result<(RevertResult, Vec<Change>), CrmError> {
    let forced = RevertChangesInput { force: Some(true), ..input };
    let (result, changes) = crate::store::dry::run(revert(store, p, forced)).await;
    Ok((result?, changes))
}
