//! Reading and writing records of every entity, driven by the entity descriptions: one
//! create path, one update path, one read path. Every write appends its change-log entries
//! in the same transaction; an update that changes nothing writes nothing.

use crate::store::ChangeAction;
use std::collections::{BTreeMap, HashMap, HashSet};

use rapport_tools::inputs::*;
use rapport_tools::records::RecordRef;
use rapport_tools::{Entity, EntityDef, FieldType, Storage};
use serde_json::{Map, Value};

use super::changes;
use super::cursor;
use super::filter::Schema;
use super::money::Sum;
use super::rules::{self, Ctx};
use super::validate::{self, At};
use super::{CrmError, DEFAULT_PAGE, MAX_BATCH, MAX_PAGE, Principal};
use crate::store::query::{Predicate, Query};
use crate::store::{Change, CustomFieldDef, Pipeline, Record, RecordId, Store, StoreError};
use crate::time::{self, Millis};

pub(super) fn batch_len(list: &str, n: usize) -> Result<(), CrmError> {
    if n == 0 || n > MAX_BATCH {
        return Err(CrmError::invalid(format!("`{list}` takes 1 to {MAX_BATCH} items, got {n}; split larger batches")));
    }
    Ok(())
}

fn mentions_custom(filters: &[Value]) -> bool {
    filters.iter().any(|f| match f {
        Value::Object(o) => {
            o.get("field").and_then(Value::as_str).is_some_and(|s| s.starts_with("custom."))
                || o.get("any").and_then(Value::as_array).is_some_and(|a| mentions_custom(a))
        }
        _ => false,
    })
}

async fn custom_defs(
    store: &Store,
    p: &Principal,
    entity: Entity,
    needed: bool,
) -> Result<Vec<CustomFieldDef>, CrmError> {
    Ok(if needed { store.custom_fields(p.org_id(), entity).await? } else { Vec::new() })
}

pub(super) fn filter_predicates(
    schema: &Schema<'_>,
    query: Option<&str>,
    filters: &[Value],
) -> Result<Vec<Predicate>, CrmError> {
    let mut preds = schema.parse_filters(filters)?;
    if let Some(q) = query.map(str::trim).filter(|q| !q.is_empty()) {
        if q.chars().count() > 200 {
            return Err(CrmError::invalid("`query` is at most 200 characters"));
        }
        // Every word must appear somewhere in the record's text.
        for word in q.to_lowercase().split_whitespace() {
            preds.push(Predicate::Text { table: crate::store::query::table(schema.entity), word: word.to_owned() });
        }
    }
    Ok(preds)
}

/// Checks a `fields` projection against the entity; `None` keeps every field.
fn projection(entities: &[Entity], fields: Option<&Vec<String>>) -> Result<Option<HashSet<String>>, CrmError> {
    let Some(fields) = fields else { return Ok(None) };
    let mut keep = HashSet::new();
    for name in fields {
        let known = name == "notes"
            || name == "custom"
            || name == "created_at"
            || name == "updated_at"
            || name.starts_with("custom.")
            || entities.iter().any(|e| e.def().field(name).is_some() || relation_keys(e.def()).any(|k| &k == name));
        if !known {
            let mut valid: Vec<&str> = entities.iter().flat_map(|e| e.def().fields.iter().map(|f| f.name)).collect();
            valid.sort_unstable();
            valid.dedup();
            return Err(CrmError::invalid(format!(
                "`fields` names `{name}`, which these records do not have; valid: {}, custom, custom.KEY",
                valid.join(", ")
            )));
        }
        keep.insert(name.clone());
    }
    Ok(Some(keep))
}

/// The extra keys `get_records` adds for relations (`company`, `contacts`, `contact_count`).
fn relation_keys(def: &EntityDef) -> impl Iterator<Item = String> + '_ {
    def.fields.iter().flat_map(|f| match (f.ty, f.storage) {
        (FieldType::Relation, _) => vec![f.name.trim_end_matches("_id").to_owned()],
        (FieldType::Relations, Storage::Reverse { entity, .. }) => {
            vec![entity.plural().to_owned(), format!("{}_count", entity.as_str())]
        }
        _ => vec![],
    })
}

fn project(mut record: Map<String, Value>, keep: Option<&HashSet<String>>) -> Map<String, Value> {
    let Some(keep) = keep else { return record };
    let custom_keys: Vec<&str> = keep.iter().filter_map(|k| k.strip_prefix("custom.")).collect();
    if !custom_keys.is_empty()
        && !keep.contains("custom")
        && let Some(Value::Object(c)) = record.get_mut("custom")
    {
        c.retain(|k, _| custom_keys.contains(&k.as_str()));
    }
    record.retain(|k, _| k == "entity" || k == "id" || keep.contains(k) || (k == "custom" && !custom_keys.is_empty()));
    record
}

/// `ids` as record ids, each once, in the order given.
pub fn unique_ids(ids: &[String]) -> Vec<RecordId> {
    let mut seen = HashSet::new();
    ids.iter().map(|i| RecordId::from(i.as_str())).filter(|i| seen.insert(i.clone())).collect()
}

/// A record as tools show it: `entity`, `id`, every field of its entity (null when
/// empty), `custom`, `created_at`, `updated_at`.
pub fn to_wire(r: &Record) -> Map<String, Value> {
    into_wire(r.clone())
}

/// `to_wire`, reusing the record's own map: the keys are sorted anyway, so nothing needs
/// copying (reads answer many records).
pub fn into_wire(r: Record) -> Map<String, Value> {
    let Record { entity, id, values: mut out, custom, created_at, updated_at } = r;
    for f in entity.def().stored() {
        if !out.contains_key(f.name) {
            let empty = match f.ty {
                FieldType::Tags | FieldType::MultiSelect | FieldType::Relations => Value::Array(Vec::new()),
                _ => Value::Null,
            };
            out.insert(f.name.to_owned(), empty);
        }
    }
    out.insert("entity".into(), entity.as_str().into());
    out.insert("id".into(), id.into_string().into());
    out.insert("custom".into(), Value::Object(custom));
    out.insert("created_at".into(), time::rfc3339(created_at).into());
    out.insert("updated_at".into(), time::rfc3339(updated_at).into());
    out
}

/// The short name of a record in references: its label fields joined.
pub fn label(r: &Record) -> String {
    let parts: Vec<&str> = r.entity.def().label.iter().filter_map(|f| r.text(f)).collect();
    if parts.is_empty() { r.text("email").unwrap_or(r.id.as_str()).to_owned() } else { parts.join(" ") }
}

fn reference(r: &Record) -> Value {
    serde_json::json!({ "id": r.id.as_str(), "name": label(r) })
}

pub async fn search(store: &Store, p: &Principal, input: SearchRecordsInput) -> Result<SearchResult, CrmError> {
    p.require(input.entity.def().read)?;
    let limit = match input.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=i64::from(MAX_PAGE)).contains(&n) => n as u32,
        Some(n) => return Err(CrmError::invalid(format!("`limit` is 1 to {MAX_PAGE}, got {n}"))),
    };
    let keep = projection(&[input.entity], input.fields.as_ref())?;
    let sorts_custom = input.sort.iter().any(|s| s.field.starts_with("custom."));
    let defs = custom_defs(store, p, input.entity, sorts_custom || mentions_custom(&input.filters)).await?;
    let schema = Schema { entity: input.entity, custom: &defs, now: time::now_ms() };
    let filter = filter_predicates(&schema, input.query.as_deref(), &input.filters)?;
    let sort = schema.parse_sort(&input.sort)?;
    let print = cursor::fingerprint(&[
        input.entity.as_str(),
        input.query.as_deref().unwrap_or("").trim(),
        &serde_json::to_string(&input.filters).unwrap_or_default(),
        &serde_json::to_string(&input.sort).unwrap_or_default(),
    ]);
    let after = match input.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(cursor::decode(c, &sort, &print)?),
        None => None,
    };
    // One extra row tells whether another page exists.
    let query = Query { entity: input.entity, filter, sort, after, limit: limit + 1 };
    let mut rows = store.search(p.org_id(), &query).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| cursor::encode(&query.sort, last, print))
    } else {
        None
    };
    Ok(SearchResult { items: rows.into_iter().map(|r| project(into_wire(r), keep.as_ref())).collect(), next_cursor })
}

pub async fn count(store: &Store, p: &Principal, input: CountRecordsInput) -> Result<CountResult, CrmError> {
    p.require(input.entity.def().read)?;
    let groups_custom = input.group_by.as_deref().is_some_and(|g| g.starts_with("custom."));
    let defs = custom_defs(store, p, input.entity, groups_custom || mentions_custom(&input.filters)).await?;
    let schema = Schema { entity: input.entity, custom: &defs, now: time::now_ms() };
    let filter = filter_predicates(&schema, input.query.as_deref(), &input.filters)?;
    let Some(group_by) = input.group_by.as_deref() else {
        return Ok(CountResult { count: store.count(p.org_id(), input.entity, &filter).await?, groups: None });
    };
    let col = schema.group_col(group_by)?;
    let counts = store.group_counts(p.org_id(), input.entity, &filter, &col).await?;
    let mut sums: HashMap<String, BTreeMap<String, Sum>> = HashMap::new();
    let amount = input.entity.def().amount;
    if let Some(amount) = amount {
        for (v, currency, value) in store.group_amounts(p.org_id(), input.entity, &filter, &col, amount).await? {
            sums.entry(v.to_string()).or_default().entry(currency).or_default().add(&value);
        }
    }
    let groups: Vec<Group> = counts
        .into_iter()
        .map(|(value, count)| {
            let sum = amount.map(|_| {
                sums.remove(&value.to_string())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(c, s)| (c, s.to_string()))
                    .collect()
            });
            Group { value, count, sum }
        })
        .collect();
    Ok(CountResult { count: groups.iter().map(|g| g.count).sum(), groups: Some(groups) })
}

/// Records by id with their relations, in a bounded number of queries: one per entity
/// asked for, plus two per relation shown. A repeated id is read once; ids not found
/// (or not visible) are listed under `missing`.
pub async fn get(store: &Store, p: &Principal, input: GetRecordsInput) -> Result<GetRecordsResult, CrmError> {
    batch_len("records", input.records.len())?;
    let mut seen = HashSet::new();
    let wanted: Vec<RecordRef> = input.records.into_iter().filter(|r| seen.insert(r.clone())).collect();
    let mut by_entity: BTreeMap<Entity, Vec<RecordId>> = BTreeMap::new();
    for r in &wanted {
        p.require(r.entity.def().read)?;
        by_entity.entry(r.entity).or_default().push(RecordId::from(r.id.as_str()));
    }
    let entities: Vec<Entity> = by_entity.keys().copied().collect();
    let keep = projection(&entities, input.fields.as_ref())?;
    let mut found: HashMap<(Entity, RecordId), Map<String, Value>> = HashMap::new();
    for (entity, ids) in by_entity {
        // The newest notes come with the records, in the same query.
        let with_notes = entity != Entity::Note && p.scopes.contains(&Entity::Note.def().read);
        let (records, notes): (Vec<Record>, Vec<Vec<Value>>) = if with_notes {
            store.get_records_with_notes(p.org_id(), entity, &ids, 3).await?.into_iter().unzip()
        } else {
            (store.get_records(p.org_id(), entity, &ids).await?, Vec::new())
        };
        let mut related: Vec<Map<String, Value>> = vec![Map::new(); records.len()];
        if with_notes {
            for (extra, list) in related.iter_mut().zip(notes) {
                let list: Vec<Value> = list
                    .into_iter()
                    .map(|mut n| {
                        if let Some(ms) = n["created_at"].as_i64() {
                            n["created_at"] = time::rfc3339(ms).into();
                        }
                        n
                    })
                    .collect();
                extra.insert("notes".into(), list.into());
            }
        }
        add_relations(store, p, entity, &records, &mut related).await?;
        for (r, extra) in records.into_iter().zip(related) {
            let key = (entity, r.id.clone());
            let mut w = into_wire(r);
            w.extend(extra);
            found.insert(key, project(w, keep.as_ref()));
        }
    }
    let mut items = Vec::with_capacity(wanted.len());
    let mut missing = Vec::new();
    for r in wanted {
        match found.remove(&(r.entity, RecordId::from(r.id.as_str()))) {
            Some(w) => items.push(w),
            None => missing.push(r),
        }
    }
    Ok(GetRecordsResult { items, missing })
}

/// Adds each record's related records, named: a to-one relation `X_id` as `X`, a reverse
/// relation as the newest 25 related records and their count. Relations the caller may
/// not read are left out.
async fn add_relations(
    store: &Store,
    p: &Principal,
    entity: Entity,
    records: &[Record],
    wires: &mut [Map<String, Value>],
) -> Result<(), CrmError> {
    for f in entity.def().fields {
        let Some(target) = f.target else { continue };
        if !p.scopes.contains(&target.def().read) {
            continue;
        }
        match (f.ty, f.storage) {
            (FieldType::Relation, Storage::Column) => {
                let ids: Vec<RecordId> = records
                    .iter()
                    .filter_map(|r| r.text(f.name).map(RecordId::from))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let related: HashMap<RecordId, Record> =
                    store.get_records(p.org_id(), target, &ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
                let key = f.name.trim_end_matches("_id");
                for (r, w) in records.iter().zip(wires.iter_mut()) {
                    let linked = r.text(f.name).and_then(|id| related.get(&RecordId::from(id)));
                    w.insert(key.into(), linked.map_or(Value::Null, reference));
                }
            }
            (FieldType::Relations, Storage::Reverse { entity: child, field: fk }) => {
                let ids: Vec<RecordId> = records.iter().map(|r| r.id.clone()).collect();
                let mut children = store.children(p.org_id(), child, fk, None, &ids, 25, true).await?;
                for (r, w) in records.iter().zip(wires.iter_mut()) {
                    let (n, list) = children.remove(&r.id).unwrap_or_default();
                    w.insert(format!("{}_count", child.as_str()), n.into());
                    w.insert(child.plural().into(), list.iter().map(reference).collect::<Vec<_>>().into());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One item of a create or update call, parsed: the fields it sets (null clears) and
/// its custom values.
struct Item {
    id: Option<RecordId>,
    if_updated_at: Option<Millis>,
    values: Map<String, Value>,
    custom: Option<Map<String, Value>>,
}

fn parse_item(def: &EntityDef, at: &At, raw: Value, update: bool) -> Result<Item, CrmError> {
    let Value::Object(obj) = raw else {
        return Err(CrmError::invalid(format!("{}[{}] is an object of fields, got {raw}", at.list, at.index)));
    };
    let mut item = Item { id: None, if_updated_at: None, values: Map::new(), custom: None };
    for (key, v) in obj {
        match key.as_str() {
            "id" if update => match v {
                Value::String(s) => item.id = Some(RecordId::from(s)),
                other => {
                    return Err(CrmError::invalid(format!("{} takes the record's id, got {other}", at.field("id"))));
                }
            },
            "if_updated_at" if update => {
                let ms = v.as_str().and_then(time::parse_instant).ok_or_else(|| {
                    CrmError::invalid(format!("{} takes the updated_at you read, got {v}", at.field("if_updated_at")))
                })?;
                item.if_updated_at = Some(ms);
            }
            "custom" => match v {
                Value::Object(m) => item.custom = Some(m),
                Value::Null => item.custom = Some(Map::new()),
                other => {
                    return Err(CrmError::invalid(format!(
                        "{} takes an object of custom values by key, got {other}",
                        at.field("custom")
                    )));
                }
            },
            name => {
                let Some(f) = def.field(name).filter(|f| f.writable) else {
                    let valid: Vec<&str> = def.writable().map(|f| f.name).collect();
                    return Err(CrmError::invalid(format!(
                        "{}[{}]: unknown field `{name}`; fields you can write: {}, custom (describe_entity gives each field's type and values).",
                        at.list,
                        at.index,
                        valid.join(", ")
                    )));
                };
                item.values.insert(f.name.to_owned(), validate::field_value(at, f, v)?);
            }
        }
    }
    if update && item.id.is_none() {
        return Err(CrmError::invalid(format!("{}[{}]: missing field `id`", at.list, at.index)));
    }
    if !update && let Some(f) = def.fields.iter().find(|f| f.required && !item.values.contains_key(f.name)) {
        return Err(CrmError::invalid(format!("{}[{}]: missing field `{}`", at.list, at.index, f.name)));
    }
    Ok(item)
}

/// Applies an item to a record, then checks the rules the whole record must obey.
fn apply(
    def: &EntityDef,
    at: &At,
    ctx: &Ctx,
    before: Option<&Record>,
    mut r: Record,
    item: &Item,
) -> Result<Record, CrmError> {
    for (name, v) in &item.values {
        if v.is_null() || v.as_array().is_some_and(Vec::is_empty) {
            r.values.remove(name);
        } else {
            r.values.insert(name.clone(), v.clone());
        }
    }
    if let Some(custom) = &item.custom {
        r.custom = validate::custom(at, ctx.defs, std::mem::take(&mut r.custom), custom.clone())?;
    }
    for rule in def.rules {
        rules::apply(*rule, at, ctx, &item.values, before, &mut r)?;
    }
    for f in def.fields.iter().filter(|f| f.required) {
        if r.values.get(f.name).is_none_or(Value::is_null) {
            return Err(CrmError::invalid(format!("{} is required and cannot be cleared", at.field(f.name))));
        }
    }
    if !def.required_any.is_empty() && def.required_any.iter().all(|f| r.values.get(*f).is_none_or(Value::is_null)) {
        let (last, rest) = def.required_any.split_last().expect("not empty");
        let names = if rest.is_empty() { (*last).to_owned() } else { format!("{} or {last}", rest.join(", ")) };
        return Err(CrmError::invalid(format!("{}[{}] needs a {names}", at.list, at.index)));
    }
    Ok(r)
}

/// Relations and owners must name records and users of the caller's organization; a
/// unique field may not repeat within one call.
async fn check_refs(store: &Store, p: &Principal, def: &EntityDef, records: &[Record]) -> Result<(), CrmError> {
    if let Some(u) = def.unique {
        let mut seen = HashSet::new();
        for r in records {
            if let Some(v) = r.text(u)
                && !seen.insert(v.to_owned())
            {
                return Err(CrmError::Conflict(format!("the {u} {v} appears twice in this call; a {u} is unique")));
            }
        }
    }
    let mut missing = Vec::new();
    for f in def.stored() {
        if f.ty == FieldType::RecordRef {
            let mut by_entity: BTreeMap<Entity, HashSet<RecordId>> = BTreeMap::new();
            for r in records {
                let v = r.get(f.name);
                if let (Some(e), Some(id)) = (v["entity"].as_str().and_then(Entity::parse), v["id"].as_str()) {
                    by_entity.entry(e).or_default().insert(RecordId::from(id));
                }
            }
            for (target, ids) in by_entity {
                // Pointing at a record takes being able to read it.
                p.require(target.def().read)?;
                let want: Vec<RecordId> = ids.into_iter().collect();
                let found: HashSet<RecordId> =
                    store.get_records(p.org_id(), target, &want).await?.into_iter().map(|r| r.id).collect();
                missing.extend(want.into_iter().filter(|i| !found.contains(i)).map(|i| (target, i.into_string())));
            }
            continue;
        }
        let ids: Vec<String> = records
            .iter()
            .flat_map(|r| match r.get(f.name) {
                Value::String(s) => vec![s.clone()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => vec![],
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            continue;
        }
        match (f.ty, f.target) {
            (FieldType::Relation | FieldType::Relations, Some(target)) => {
                let want: Vec<RecordId> = ids.iter().map(|i| RecordId::from(i.as_str())).collect();
                let found: HashSet<RecordId> =
                    store.get_records(p.org_id(), target, &want).await?.into_iter().map(|r| r.id).collect();
                missing.extend(want.into_iter().filter(|i| !found.contains(i)).map(|i| (target, i.into_string())));
            }
            (FieldType::User, _) => {
                let found: HashSet<String> = store.existing_users(p.org_id(), &ids).await?.into_iter().collect();
                if let Some(bad) = ids.iter().find(|i| !found.contains(*i)) {
                    return Err(CrmError::invalid(format!(
                        "{} {bad} is not a user of this organization; get_workspace shows your own user id",
                        f.name
                    )));
                }
            }
            _ => {}
        }
    }
    if !missing.is_empty() {
        return Err(CrmError::NotFound(missing));
    }
    Ok(())
}

fn map_conflict(e: StoreError) -> CrmError {
    match e {
        StoreError::Conflict(what) => CrmError::Conflict(format!(
            "{what} already exists in this organization; search for it and update it instead"
        )),
        other => CrmError::Store(other),
    }
}

/// A write call's 1 to 100 items, each parsed. Setting a relation (`company_id`,
/// `contact_ids`) links records, which takes write on the other side too, as link_records
/// does (SPEC 5): one rule, however the link is made.
fn parse_items(p: &Principal, def: &EntityDef, raw: Vec<Value>, update: bool) -> Result<Vec<Item>, CrmError> {
    batch_len(def.plural, raw.len())?;
    let items: Vec<Item> = raw
        .into_iter()
        .enumerate()
        .map(|(index, v)| parse_item(def, &At { list: def.plural, index }, v, update))
        .collect::<Result<_, _>>()?;
    link_scopes(p, def, &items)?;
    Ok(items)
}

/// Setting a relation (`company_id`, `contact_ids`) links records, which takes write on the
/// other side too, as link_records does (SPEC 5).
fn link_scopes(p: &Principal, def: &EntityDef, items: &[Item]) -> Result<(), CrmError> {
    let set = |f: &&rapport_tools::Field| items.iter().any(|i| i.values.contains_key(f.name));
    for f in def.fields.iter().filter(|f| matches!(f.ty, FieldType::Relation | FieldType::Relations)).filter(set) {
        let Some(other) = f.target else { continue };
        let needed = other.def().write;
        if !p.scopes.contains(&needed) {
            return Err(CrmError::Denied(format!(
                "setting `{}` links {} to {}, which takes `{needed}` as well, as link_records does; this key lacks it, so leave `{}` out",
                f.name,
                def.plural,
                other.def().plural,
                f.name
            )));
        }
    }
    Ok(())
}

/// The organization's pipelines, when the entity's rules need them.
async fn pipelines_for(store: &Store, p: &Principal, def: &EntityDef) -> Result<Vec<Pipeline>, CrmError> {
    Ok(if def.has_rule(rapport_tools::Rule::PipelineStage) { store.pipelines(p.org_id()).await? } else { Vec::new() })
}

fn sets_custom(items: &[Item]) -> bool {
    items.iter().any(|i| i.custom.as_ref().is_some_and(|m| !m.is_empty()))
}

/// Checks every new record, then inserts all of them or none, with their change entries.
pub async fn create(store: &Store, p: &Principal, entity: Entity, raw: Vec<Value>) -> Result<RecordsResult, CrmError> {
    let def = entity.def();
    p.require(def.write)?;
    let items = parse_items(p, def, raw, false)?;
    let defs = custom_defs(store, p, entity, sets_custom(&items)).await?;
    let pipelines = pipelines_for(store, p, def).await?;
    let now = time::now_ms();
    let ctx = Ctx { defs: &defs, pipelines: &pipelines, now };
    let records = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let at = At { list: def.plural, index };
            apply(def, &at, &ctx, None, Record::new(entity, RecordId::generate(), now), item)
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_refs(store, p, def, &records).await?;
    let entries: Vec<Change> = records.iter().map(|r| changes::created(p, r)).collect();
    let mut tx = store.begin().await?;
    tx.insert_records(p.org_id(), &records, &entries).await.map_err(map_conflict)?;
    tx.commit().await?;
    Ok(RecordsResult { items: records.iter().map(to_wire).collect() })
}

/// Read, apply, write with an optimistic check on `updated_at`; a concurrent change to
/// the same record makes the whole batch start over, so no change is lost. Records the
/// changes leave as they were are not written and get no change entry.
pub async fn update(store: &Store, p: &Principal, entity: Entity, raw: Vec<Value>) -> Result<RecordsResult, CrmError> {
    let def = entity.def();
    p.require(def.write)?;
    let list = def.plural;
    let items = parse_items(p, def, raw, true)?;
    let ids: Vec<RecordId> = items.iter().map(|i| i.id.clone().expect("checked in parse_item")).collect();
    let mut seen = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(CrmError::invalid(format!(
                "{list}[{i}] names the same id as {list}[{first}]; merge the two changes into one"
            )));
        }
    }
    let defs = custom_defs(store, p, entity, sets_custom(&items)).await?;
    let pipelines = pipelines_for(store, p, def).await?;
    for _attempt in 0..5 {
        let mut current: HashMap<RecordId, Record> =
            store.get_records(p.org_id(), entity, &ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        let missing: Vec<(Entity, String)> =
            ids.iter().filter(|id| !current.contains_key(*id)).map(|id| (entity, id.as_str().to_owned())).collect();
        if !missing.is_empty() {
            return Err(CrmError::NotFound(missing));
        }
        let now = time::now_ms();
        let ctx = Ctx { defs: &defs, pipelines: &pipelines, now };
        let mut results = Vec::with_capacity(items.len());
        let mut writes: Vec<(Record, Millis)> = Vec::new();
        let mut entries = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let before = current.remove(&ids[index]).expect("checked above");
            if let Some(expected) = item.if_updated_at
                && expected != before.updated_at
            {
                return Err(CrmError::Conflict(format!(
                    "{list}[{index}] changed since you read it (updated_at is now {}); nothing was written. The record as it is now: {}",
                    time::rfc3339(before.updated_at),
                    Value::Object(to_wire(&before))
                )));
            }
            let mut after = apply(def, &At { list, index }, &ctx, Some(&before), before.clone(), item)?;
            let diff = changes::diff(Some(&before), &after);
            if diff.is_empty() {
                results.push(before);
                continue;
            }
            // Strictly later, so the optimistic check can tell two writes apart.
            after.updated_at = now.max(before.updated_at + 1);
            entries.push(changes::entry(
                p,
                after.updated_at,
                ChangeAction::Updated,
                entity.into(),
                after.id.as_str(),
                diff,
            ));
            writes.push((after.clone(), before.updated_at));
            results.push(after);
        }
        let written: Vec<Record> = writes.iter().map(|(r, _)| r.clone()).collect();
        check_refs(store, p, def, &written).await?;
        if writes.is_empty() {
            return Ok(RecordsResult { items: results.iter().map(to_wire).collect() });
        }
        let mut tx = store.begin().await?;
        match tx.update_records(p.org_id(), &writes, &entries).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(RecordsResult { items: results.iter().map(to_wire).collect() });
            }
            Err(StoreError::Stale) => {
                store.catch_up(tx).await?;
                continue;
            }
            Err(StoreError::NotFound) => {
                return Err(CrmError::NotFound(ids.iter().map(|id| (entity, id.as_str().to_owned())).collect()));
            }
            Err(e) => return Err(map_conflict(e)),
        }
    }
    Err(CrmError::Conflict("these records are being changed by someone else right now; try again".into()))
}

/// Creates or updates each item, matched on the entity's upsert key (case-insensitive):
/// `created`, `updated`, `unchanged`, or `ambiguous` when several records match (nothing
/// is written for that item). All writes happen in one transaction.
pub async fn upsert(store: &Store, p: &Principal, entity: Entity, raw: Vec<Value>) -> Result<UpsertResult, CrmError> {
    let def = entity.def();
    let key = def.upsert_key.ok_or_else(|| CrmError::invalid(format!("{} cannot be upserted", def.plural)))?;
    p.require(def.write)?;
    let list = def.plural;
    let items = parse_items(p, def, raw, false)?;
    let mut keys = Vec::with_capacity(items.len());
    let mut seen = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let Some(k) = item.values.get(key).and_then(Value::as_str).map(str::to_lowercase) else {
            return Err(CrmError::invalid(format!("{list}[{index}] needs `{key}`: upserts match on it")));
        };
        if let Some(first) = seen.insert(k.clone(), index) {
            return Err(CrmError::invalid(format!(
                "{list}[{index}] has the same {key} as {list}[{first}]; merge the two into one item"
            )));
        }
        keys.push(k);
    }
    let defs = custom_defs(store, p, entity, sets_custom(&items)).await?;
    let pipelines = pipelines_for(store, p, def).await?;
    for _attempt in 0..5 {
        let mut by_key: HashMap<String, Vec<Record>> = HashMap::new();
        for r in store.find_by(p.org_id(), entity, key, &keys).await? {
            if let Some(k) = r.text(key) {
                by_key.entry(k.to_lowercase()).or_default().push(r);
            }
        }
        let now = time::now_ms();
        let ctx = Ctx { defs: &defs, pipelines: &pipelines, now };
        let mut out = Vec::with_capacity(items.len());
        let (mut inserts, mut insert_entries) = (Vec::new(), Vec::new());
        let (mut updates, mut update_entries) = (Vec::new(), Vec::new());
        for (index, item) in items.iter().enumerate() {
            let at = At { list, index };
            let matches = by_key.remove(&keys[index]).unwrap_or_default();
            let ids: Vec<String> = matches.iter().map(|r| r.id.as_str().to_owned()).collect();
            match matches.as_slice() {
                [] => {
                    let r = apply(def, &at, &ctx, None, Record::new(entity, RecordId::generate(), now), item)?;
                    insert_entries.push(changes::created(p, &r));
                    out.push(UpsertItem {
                        status: "created".into(),
                        record: Some(to_wire(&r)),
                        matches: vec![r.id.as_str().to_owned()],
                    });
                    inserts.push(r);
                }
                [before] => {
                    let mut after = apply(def, &at, &ctx, Some(before), before.clone(), item)?;
                    let diff = changes::diff(Some(before), &after);
                    if diff.is_empty() {
                        out.push(UpsertItem {
                            status: "unchanged".into(),
                            record: Some(to_wire(before)),
                            matches: ids,
                        });
                        continue;
                    }
                    after.updated_at = now.max(before.updated_at + 1);
                    update_entries.push(changes::entry(
                        p,
                        after.updated_at,
                        ChangeAction::Updated,
                        entity.into(),
                        after.id.as_str(),
                        diff,
                    ));
                    out.push(UpsertItem { status: "updated".into(), record: Some(to_wire(&after)), matches: ids });
                    updates.push((after, before.updated_at));
                }
                _ => out.push(UpsertItem { status: "ambiguous".into(), record: None, matches: ids }),
            }
        }
        let mut written: Vec<Record> = inserts.clone();
        written.extend(updates.iter().map(|(r, _)| r.clone()));
        check_refs(store, p, def, &written).await?;
        if written.is_empty() {
            return Ok(UpsertResult { items: out });
        }
        let mut tx = store.begin().await?;
        tx.insert_records(p.org_id(), &inserts, &insert_entries).await.map_err(map_conflict)?;
        match tx.update_records(p.org_id(), &updates, &update_entries).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(UpsertResult { items: out });
            }
            Err(StoreError::Stale | StoreError::NotFound) => {
                store.catch_up(tx).await?;
                continue;
            }
            Err(e) => return Err(map_conflict(e)),
        }
    }
    Err(CrmError::Conflict("these records are being changed by someone else right now; try again".into()))
}

/// One free-text query across every entity the caller may read, at most `limit` per
/// entity, best matches first: a label that starts with the query, then one that holds it.
pub async fn search_all(store: &Store, p: &Principal, input: SearchAllInput) -> Result<RecordsResult, CrmError> {
    let query = input.query.trim();
    if query.is_empty() || query.chars().count() > 200 {
        return Err(CrmError::invalid("`query` is 1 to 200 characters"));
    }
    let limit = match input.limit {
        None => 5,
        Some(n @ 1..=25) => n as u32,
        Some(n) => return Err(CrmError::invalid(format!("`limit` is 1 to 25 per entity, got {n}"))),
    };
    let entities: Vec<Entity> = Entity::ALL.iter().copied().filter(|e| p.scopes.contains(&e.def().read)).collect();
    if entities.is_empty() {
        return Err(CrmError::Forbidden(Entity::Contact.def().read));
    }
    let needle = query.to_lowercase();
    let mut scored: Vec<(u8, usize, Map<String, Value>)> = Vec::new();
    for (n, entity) in entities.iter().enumerate() {
        let schema = Schema { entity: *entity, custom: &[], now: time::now_ms() };
        let filter = filter_predicates(&schema, Some(query), &[])?;
        let sort = schema.parse_sort(&[])?;
        let q = Query { entity: *entity, filter, sort, after: None, limit };
        for r in store.search(p.org_id(), &q).await? {
            let name = label(&r).to_lowercase();
            let score = if name == needle {
                0
            } else if name.starts_with(&needle) {
                1
            } else if name.contains(&needle) {
                2
            } else {
                3
            };
            scored.push((score, n, to_wire(&r)));
        }
    }
    scored.sort_by_key(|(score, n, _)| (*score, *n));
    Ok(RecordsResult { items: scored.into_iter().map(|(_, _, w)| w).collect() })
}

/// Rows from outside (an import, SPEC 13), each on its own through the checks a tool call's
/// items go through: parsed, applied with the entity's rules, their references checked. A
/// row's error names the field alone (`email is …`), for a report by line.
pub struct RowWriter {
    entity: Entity,
    defs: Vec<CustomFieldDef>,
    pipelines: Vec<Pipeline>,
}

impl RowWriter {
    pub async fn new(store: &Store, p: &Principal, entity: Entity) -> Result<Self, CrmError> {
        let def = entity.def();
        p.require(def.write)?;
        let defs = store.custom_fields(p.org_id(), entity).await?;
        let pipelines = pipelines_for(store, p, def).await?;
        Ok(RowWriter { entity, defs, pipelines })
    }

    pub fn custom_fields(&self) -> &[CustomFieldDef] {
        &self.defs
    }

    fn parse(&self, p: &Principal, raw: Map<String, Value>, update: bool) -> Result<Item, CrmError> {
        let def = self.entity.def();
        let item = parse_item(def, &self.at(), Value::Object(raw), update).map_err(|e| self.plain(e))?;
        link_scopes(p, def, std::slice::from_ref(&item))?;
        Ok(item)
    }

    fn at(&self) -> At<'static> {
        At { list: self.entity.plural(), index: 0 }
    }

    /// `contacts[0].email is …` as a row's report reads it: `email is …`.
    fn plain(&self, e: CrmError) -> CrmError {
        match e {
            CrmError::Invalid(m) => {
                let prefix = format!("{}[0]", self.entity.plural());
                let m = m
                    .replace(&format!("{prefix}."), "")
                    .replace(&format!("{prefix}: "), "")
                    .replace(&prefix, "the row");
                CrmError::Invalid(m)
            }
            other => other,
        }
    }

    /// A new record from a row's fields.
    pub fn create(&self, p: &Principal, raw: Map<String, Value>, now: Millis) -> Result<Record, CrmError> {
        let item = self.parse(p, raw, false)?;
        let ctx = Ctx { defs: &self.defs, pipelines: &self.pipelines, now };
        let fresh = Record::new(self.entity, RecordId::generate(), now);
        apply(self.entity.def(), &self.at(), &ctx, None, fresh, &item).map_err(|e| self.plain(e))
    }

    /// A record as `export --all` wrote it (the answers' form), checked as a create would
    /// be, and kept with its own id, times and values: rules that fill fields on create
    /// (a task's `done_at`, a deal's `status`) must not overwrite what the record held.
    pub fn restore(&self, p: &Principal, wire: &Map<String, Value>) -> Result<Record, CrmError> {
        let def = self.entity.def();
        let text = |name: &str| wire.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let id = text("id").ok_or_else(|| CrmError::invalid("the record has no `id`"))?;
        let instant = |name: &str| {
            text(name)
                .and_then(time::parse_instant)
                .ok_or_else(|| CrmError::invalid(format!("`{name}` is not an RFC 3339 time")))
        };
        let (created_at, updated_at) = (instant("created_at")?, instant("updated_at")?);
        let given = |v: &Value| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty));
        let mut raw = Map::new();
        // Read-only columns (last_activity_at) follow from the records written after.
        for f in def.stored().filter(|f| f.writable) {
            if let Some(v) = wire.get(f.name).filter(|v| given(v)) {
                raw.insert(f.name.to_owned(), v.clone());
            }
        }
        if let Some(Value::Object(c)) = wire.get("custom") {
            let custom: Map<String, Value> =
                c.iter().filter(|(_, v)| given(v)).map(|(k, v)| (k.clone(), v.clone())).collect();
            if !custom.is_empty() {
                raw.insert("custom".into(), Value::Object(custom));
            }
        }
        // Checked as of its last change: an activity may have been re-dated after it was
        // logged, never beyond the time of that change.
        let mut record = self.create(p, raw.clone(), updated_at.max(created_at))?;
        record.id = RecordId::from(id);
        for f in def.stored().filter(|f| f.ty == FieldType::Datetime && f.writable) {
            match raw.get(f.name) {
                Some(v) => record.values.insert(f.name.to_owned(), v.clone()),
                None => record.values.remove(f.name),
            };
        }
        record.created_at = created_at;
        record.updated_at = updated_at.max(created_at);
        Ok(record)
    }

    /// `current` with a row's fields applied (several rows may apply to one record).
    pub fn apply(
        &self,
        p: &Principal,
        current: &Record,
        raw: Map<String, Value>,
        now: Millis,
    ) -> Result<Record, CrmError> {
        let item = self.parse(p, raw, false)?;
        let ctx = Ctx { defs: &self.defs, pipelines: &self.pipelines, now };
        apply(self.entity.def(), &self.at(), &ctx, Some(current), current.clone(), &item).map_err(|e| self.plain(e))
    }

    /// The record as stored after an update from `before`, and its change entry; `None`
    /// when nothing changed.
    pub fn updated(&self, p: &Principal, before: &Record, mut after: Record, now: Millis) -> Option<(Record, Change)> {
        let diff = changes::diff(Some(before), &after);
        if diff.is_empty() {
            return None;
        }
        after.updated_at = now.max(before.updated_at + 1);
        let entry =
            changes::entry(p, after.updated_at, ChangeAction::Updated, self.entity.into(), after.id.as_str(), diff);
        Some((after, entry))
    }

    /// The references of these records (owners, related records) exist and may be set.
    pub async fn check(&self, store: &Store, p: &Principal, records: &[Record]) -> Result<(), CrmError> {
        check_refs(store, p, self.entity.def(), records).await.map_err(|e| self.plain(e))
    }
}
