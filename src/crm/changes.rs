//! Change-log entries in the shape of SPEC section 5, built for every record write.

use crate::store::{ChangeAction, ChangeEntity};
use serde_json::{Map, Value, json};

use super::Principal;
use crate::store::{Change, Record};
use crate::time::Millis;

pub fn entry(
    p: &Principal,
    at: Millis,
    action: ChangeAction,
    entity: ChangeEntity,
    record_id: &str,
    changes: Map<String, Value>,
) -> Change {
    Change {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: p.org.id.clone(),
        at,
        action,
        entity,
        record_id: record_id.to_owned(),
        actor: p.change_actor(),
        via: p.via.clone(),
        reverts: Vec::new(),
        changes,
    }
}

/// A changed field as the change log shows it: `{"before", "after"}`.
pub fn pair(before: impl Into<Value>, after: impl Into<Value>) -> Value {
    json!({ "before": before.into(), "after": after.into() })
}

/// The changes of an entry that changes one field.
pub fn one(field: &str, before: impl Into<Value>, after: impl Into<Value>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(field.to_owned(), pair(before, after));
    m
}

/// Every field a new record has, as `{before: null, after: value}`.
pub fn created(p: &Principal, r: &Record) -> Change {
    entry(p, r.created_at, ChangeAction::Created, r.entity.into(), r.id.as_str(), diff(None, r))
}

/// The fields that differ between `before` and `after` (custom fields as `custom.KEY`);
/// empty when nothing changed.
pub fn diff(before: Option<&Record>, after: &Record) -> Map<String, Value> {
    let mut out = Map::new();
    let null = Value::Null;
    for f in after.entity.def().stored() {
        let (b, a) = (before.map_or(&null, |r| r.get(f.name)), after.get(f.name));
        if !same(b, a) {
            out.insert(f.name.to_owned(), pair(b.clone(), a.clone()));
        }
    }
    let empty = Map::new();
    let old = before.map_or(&empty, |r| &r.custom);
    for (k, a) in &after.custom {
        let b = old.get(k).unwrap_or(&null);
        if b != a {
            out.insert(format!("custom.{k}"), pair(b.clone(), a.clone()));
        }
    }
    for (k, b) in old {
        if !after.custom.contains_key(k) {
            out.insert(format!("custom.{k}"), pair(b.clone(), Value::Null));
        }
    }
    out
}

/// Equal, counting an empty list as no value.
fn same(a: &Value, b: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
    a == b || (empty(a) && empty(b))
}
