//! `link_records` and `unlink_records`: the relations of SPEC section 5, as the entity
//! descriptions name them, whichever way round a pair is given. The
//! record that holds the relation changes; both records get a change entry.

use crate::store::ChangeAction;
use std::collections::{BTreeMap, HashMap};

use rapport_tools::inputs::{Link, LinkResult};
use rapport_tools::records::RecordRef;
use rapport_tools::{Entity, Field, FieldType, Storage};
use serde_json::{Map, Value, json};

use super::records::batch_len;
use super::{CrmError, Principal, changes};
use crate::store::{Change, Record, RecordId, Store, StoreError};
use crate::time;

/// The field of `holder` that relates it to records of `other`.
/// A relation to `other` itself comes before a reference to any record: an activity links
/// to a contact as a participant, not as what it is about.
fn relation(holder: Entity, other: Entity) -> Option<&'static Field> {
    let typed = |f: &&Field| matches!(f.ty, FieldType::Relation | FieldType::Relations) && f.target == Some(other);
    holder.def().stored().find(typed).or_else(|| holder.def().stored().find(|f| f.ty == FieldType::RecordRef))
}

/// What can be linked, from the entity descriptions: "contact-company, …, task-any record".
fn linkable() -> String {
    let mut pairs = Vec::new();
    for e in Entity::ALL {
        for f in e.def().stored() {
            match (f.ty, f.target) {
                (FieldType::Relation | FieldType::Relations, Some(t)) => pairs.push(format!("{e}-{t}")),
                (FieldType::RecordRef, _) => pairs.push(format!("{e}-any record")),
                _ => {}
            }
        }
    }
    pairs.join(", ")
}

/// The pair as (holder, field, other), or a message listing what can be linked.
fn orient(l: &Link) -> Result<(RecordRef, &'static Field, RecordRef), CrmError> {
    if let Some(f) = relation(l.from.entity, l.to.entity) {
        return Ok((l.from.clone(), f, l.to.clone()));
    }
    if let Some(f) = relation(l.to.entity, l.from.entity) {
        return Ok((l.to.clone(), f, l.from.clone()));
    }
    Err(CrmError::invalid(format!("a {} cannot be linked to a {}; links: {}", l.from.entity, l.to.entity, linkable())))
}

fn apply(r: &mut Record, f: &Field, other: &RecordRef, link: bool) {
    match f.ty {
        FieldType::Relation if link => {
            r.values.insert(f.name.into(), Value::String(other.id.clone()));
        }
        FieldType::Relation if r.text(f.name) == Some(other.id.as_str()) => {
            r.values.remove(f.name);
        }
        FieldType::Relations => {
            let mut ids: Vec<Value> = r.get(f.name).as_array().cloned().unwrap_or_default();
            let id = Value::String(other.id.clone());
            if link && !ids.contains(&id) {
                ids.push(id);
            } else if !link {
                ids.retain(|v| *v != id);
            }
            r.values.insert(f.name.into(), Value::Array(ids));
        }
        FieldType::RecordRef if link => {
            r.values.insert(f.name.into(), json!({ "entity": other.entity.as_str(), "id": other.id }));
        }
        FieldType::RecordRef
            if r.get(f.name)["id"] == other.id.as_str() && r.get(f.name)["entity"] == other.entity.as_str() =>
        {
            r.values.remove(f.name);
        }
        _ => {}
    }
}

/// Links (or unlinks) every pair, all or none.
pub async fn set(store: &Store, p: &Principal, links: &[Link], link: bool) -> Result<LinkResult, CrmError> {
    batch_len("links", links.len())?;
    let pairs = links.iter().map(orient).collect::<Result<Vec<_>, _>>()?;
    for (holder, _, other) in &pairs {
        p.require(holder.entity.def().write)?;
        p.require(other.entity.def().write)?;
        if holder == other {
            return Err(CrmError::invalid("a record cannot be linked to itself"));
        }
    }
    let mut wanted: BTreeMap<Entity, Vec<RecordId>> = BTreeMap::new();
    for (a, _, b) in &pairs {
        for r in [a, b] {
            let ids = wanted.entry(r.entity).or_default();
            let id = RecordId::from(r.id.as_str());
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    for _attempt in 0..5 {
        let mut found: HashMap<(Entity, RecordId), Record> = HashMap::new();
        let mut missing = Vec::new();
        for (entity, ids) in &wanted {
            let got = store.get_records(p.org_id(), *entity, ids).await?;
            for id in ids {
                if !got.iter().any(|r| &r.id == id) {
                    missing.push((*entity, id.as_str().to_owned()));
                }
            }
            found.extend(got.into_iter().map(|r| ((*entity, r.id.clone()), r)));
        }
        if !missing.is_empty() {
            return Err(CrmError::NotFound(missing));
        }
        let now = time::now_ms();
        let before = found.clone();
        let action = if link { ChangeAction::Linked } else { ChangeAction::Unlinked };
        let mut others: Vec<Change> = Vec::new();
        for (holder, f, other) in &pairs {
            let key = (holder.entity, RecordId::from(holder.id.as_str()));
            let r = found.get_mut(&key).expect("loaded above");
            let was = r.get(f.name).clone();
            apply(r, f, other, link);
            if *r.get(f.name) != was {
                let field = match f.storage {
                    Storage::Links | Storage::Column => format!("{}_ids", holder.entity.as_str()),
                    _ => unreachable!("relations are stored"),
                };
                let (b, a) = if link {
                    (Value::Null, Value::String(holder.id.clone()))
                } else {
                    (Value::String(holder.id.clone()), Value::Null)
                };
                let mut diff = Map::new();
                diff.insert(field, json!({ "before": b, "after": a }));
                others.push(changes::entry(p, now, action, other.entity.into(), &other.id, diff));
            }
        }
        let mut writes = Vec::new();
        let mut entries = Vec::new();
        for (key, after) in found.iter_mut() {
            let old = &before[key];
            let diff = changes::diff(Some(old), after);
            if diff.is_empty() {
                continue;
            }
            after.updated_at = now.max(old.updated_at + 1);
            entries.push(changes::entry(p, after.updated_at, action, key.0.into(), key.1.as_str(), diff));
            writes.push((after.clone(), old.updated_at));
        }
        let changed = writes.len() as u64;
        if writes.is_empty() {
            return Ok(LinkResult { changed: 0 });
        }
        entries.extend(others);
        let mut tx = store.begin().await?;
        match tx.update_records(p.org_id(), &writes, &entries).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(LinkResult { changed });
            }
            Err(StoreError::Stale) => {
                store.catch_up(tx).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CrmError::Conflict("these records are being changed by someone else right now; try again".into()))
}
