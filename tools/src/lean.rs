//! Compact reads for the lean profile (SPEC 5): a search answers what identifies each record
//! and what the search itself looked at; the whole record is one `get_records` away.

use serde_json::{Map, Value, json};

use crate::call::Tool;
use crate::entities::Entity;

/// The fields a compact read keeps of `entity`'s records: its label fields, `also`, and
/// `updated_at`, each once.
fn compact_fields<'a>(entity: Entity, also: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let def = entity.def();
    let mut out: Vec<String> = Vec::new();
    let known = |name: &str| def.field(name).is_some() || name.starts_with("custom.") || name == "created_at";
    for name in def.label.iter().copied().chain(also.into_iter().filter(|n| known(n))).chain(["updated_at"]) {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    out
}

/// The fields `filters` (conditions and `any` groups) name.
fn filter_fields(filters: &Value, out: &mut Vec<String>) {
    for c in filters.as_array().into_iter().flatten() {
        if let Some(f) = c.get("field").and_then(Value::as_str) {
            out.push(f.to_owned());
        }
        if let Some(any) = c.get("any") {
            filter_fields(any, out);
        }
    }
}

/// Before a lean `search_records` runs: without `fields`, it asks for the compact ones.
/// Answers whether it did.
pub fn compact_arguments(tool: Tool, args: &mut Map<String, Value>) -> bool {
    if tool != Tool::SearchRecords || args.get("fields").is_some_and(|f| !f.is_null()) {
        return false;
    }
    let Some(entity) = args.get("entity").and_then(Value::as_str).and_then(Entity::parse) else { return false };
    let mut named = Vec::new();
    if let Some(filters) = args.get("filters") {
        filter_fields(filters, &mut named);
    }
    for s in args.get("sort").and_then(Value::as_array).into_iter().flatten() {
        if let Some(f) = s.get("field").and_then(Value::as_str) {
            named.push(f.to_owned());
        }
    }
    let fields = compact_fields(entity, named.iter().map(String::as_str));
    args.insert("fields".into(), json!(fields));
    true
}

/// After a lean read: `search_all` gives each record as its label shows it, a compact
/// `search_records` (`compacted`: it asked for no `fields`) leaves out the entity the call
/// named, and `describe_entity` names each type's operators once instead of on every field
/// (SPEC 5: at most 3 KB).
pub fn compact_answer(tool: Tool, answer: &mut Value, compacted: bool) {
    match tool {
        Tool::SearchAll => compact_search_all(answer),
        Tool::SearchRecords if compacted => {
            for item in answer.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Value::Object(record) = item {
                    record.remove("entity");
                }
            }
        }
        Tool::DescribeEntity => compact_description(answer),
        _ => {}
    }
}

fn compact_description(answer: &mut Value) {
    let mut by_type = Map::new();
    for list in ["fields", "custom_fields"] {
        for field in answer.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            let Value::Object(f) = field else { continue };
            if let (Some(Value::String(ty)), Some(ops)) = (f.get("type").cloned(), f.remove("operators")) {
                by_type.entry(ty).or_insert(ops);
            }
            // Only what holds is said: a field is not sortable, writable or required unless so.
            f.retain(|k, v| !(matches!(k.as_str(), "sortable" | "writable" | "required") && *v == Value::Bool(false)));
            if f.get("options").is_some_and(|o| o.as_array().is_some_and(Vec::is_empty)) {
                f.remove("options");
            }
        }
    }
    if let Value::Object(d) = answer {
        d.insert("operators".into(), Value::Object(by_type));
    }
}

fn compact_search_all(answer: &mut Value) {
    for item in answer.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(entity) = item.get("entity").and_then(Value::as_str).and_then(Entity::parse) else { continue };
        let keep = compact_fields(entity, []);
        if let Value::Object(record) = item {
            record.retain(|k, _| k == "entity" || k == "id" || keep.iter().any(|f| f == k));
        }
    }
}
