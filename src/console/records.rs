//! Records, read-only: a searchable list per entity and a record page with its fields,
//! relations and timeline, so people can see what the agents did. Everything is read
//! through the same domain calls as `search_records`, `get_records` and `get_timeline`;
//! columns come from the entity descriptions.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use rapport_tools::inputs::{GetRecordsInput, GetTimelineInput, SearchRecordsInput};
use rapport_tools::records::RecordRef;
use rapport_tools::{Entity, Field, FieldType};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::activity::FieldChange;
use super::session::Session;
use super::{Chrome, PageError, PageResult, ago, entity_of, render, title, urlencode, when};
use crate::crm::{records, timeline};
use crate::state::AppState;

pub struct Tab {
    pub href: String,
    pub label: String,
    pub current: bool,
}

fn tabs(s: &Session, current: Entity) -> Vec<Tab> {
    Entity::ALL
        .iter()
        .filter(|e| s.principal.scopes.contains(&e.def().read))
        .map(|e| Tab {
            href: format!("/records/{}", e.def().plural),
            label: title(e.def().plural),
            current: *e == current,
        })
        .collect()
}

fn readable(s: &Session, segment: &str) -> Result<Entity, PageError> {
    let e = entity_of(segment).ok_or_else(PageError::not_found)?;
    if s.principal.scopes.contains(&e.def().read) { Ok(e) } else { Err(PageError::forbidden()) }
}

/// The columns a list shows besides the label: the first few sortable plain fields.
fn list_columns(e: Entity) -> Vec<&'static Field> {
    let def = e.def();
    def.fields
        .iter()
        .filter(|f| f.sortable && !def.label.contains(&f.name))
        .filter(|f| !matches!(f.ty, FieldType::Id | FieldType::Relation | FieldType::User | FieldType::Datetime))
        .filter(|f| !matches!(f.name, "created_at" | "updated_at"))
        .take(4)
        .collect()
}

/// A value as text for a table cell.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.iter().map(|x| cell(Some(x))).collect::<Vec<_>>().join(", "),
        Some(Value::Object(o)) if o.contains_key("amount") => {
            format!("{} {}", cell(o.get("amount")), cell(o.get("currency")))
        }
        Some(other) => other.to_string(),
    }
}

fn label_of(e: Entity, item: &Map<String, Value>) -> String {
    let parts: Vec<String> = e.def().label.iter().map(|f| cell(item.get(*f))).filter(|s| !s.is_empty()).collect();
    let label = if parts.is_empty() { cell(item.get("email")) } else { parts.join(" ") };
    let label = if label.is_empty() { cell(item.get("id")) } else { label };
    if label.chars().count() > 120 { format!("{}…", label.chars().take(119).collect::<String>()) } else { label }
}

pub async fn index(s: Session) -> PageResult {
    let first =
        Entity::ALL.iter().find(|e| s.principal.scopes.contains(&e.def().read)).ok_or_else(PageError::forbidden)?;
    Ok(Redirect::to(&format!("/records/{}", first.def().plural)).into_response())
}

pub struct Row {
    pub href: String,
    pub label: String,
    pub cells: Vec<String>,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "records.html")]
struct ListPage {
    c: Chrome,
    tabs: Vec<Tab>,
    plural: String,
    singular: String,
    q: String,
    headers: Vec<String>,
    rows: Vec<Row>,
    next: Option<String>,
    /// The list as CSV, with its search.
    export: String,
    can_import: bool,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    s: Session,
    Path(segment): Path<String>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let entity = readable(&s, &segment)?;
    let text = q.q.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let input = SearchRecordsInput {
        entity,
        query: text.clone(),
        filters: Vec::new(),
        sort: Vec::new(),
        limit: Some(25),
        cursor: q.cursor.filter(|c| !c.is_empty()),
        fields: None,
    };
    let result = records::search(&state.store, &s.principal, input).await?;
    let columns = list_columns(entity);
    let plural = entity.def().plural;
    let rows = result
        .items
        .iter()
        .map(|item| Row {
            href: format!("/records/{plural}/{}", cell(item.get("id"))),
            label: label_of(entity, item),
            cells: columns.iter().map(|f| cell(item.get(f.name))).collect(),
            updated: item
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(crate::time::parse_instant)
                .map(ago)
                .unwrap_or_default(),
        })
        .collect();
    let next = result.next_cursor.map(|c| {
        let q = text.as_deref().map(|t| format!("q={}&", urlencode(t))).unwrap_or_default();
        format!("/records/{plural}?{q}cursor={}", urlencode(&c))
    });
    let page = ListPage {
        c: Chrome::new(&s, title(plural), "/records", None),
        tabs: tabs(&s, entity),
        plural: plural.to_owned(),
        singular: entity.as_str().to_owned(),
        export: match &text {
            Some(t) => format!("/records/{plural}/export?q={}", urlencode(t)),
            None => format!("/records/{plural}/export"),
        },
        can_import: s.principal.scopes.contains(&entity.def().write),
        q: text.unwrap_or_default(),
        headers: columns.iter().map(|f| f.name.replace('_', " ")).collect(),
        rows,
        next,
    };
    Ok(render(&page))
}

pub struct FieldRow {
    pub name: String,
    pub value: String,
    /// A link when the value names another record.
    pub href: Option<String>,
}

pub struct Related {
    pub title: String,
    pub count: Option<u64>,
    pub items: Vec<(String, String)>,
}

pub struct Entry {
    pub when: String,
    pub ago: String,
    pub actor: String,
    pub action: String,
    pub about: String,
    pub fields: Vec<FieldChange>,
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    c: Chrome,
    tabs: Vec<Tab>,
    plural: String,
    label: String,
    fields: Vec<FieldRow>,
    custom: Vec<FieldRow>,
    related: Vec<Related>,
    timeline: Vec<Entry>,
    more_timeline: Option<String>,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    cursor: Option<String>,
}

fn reference(v: &Value) -> Option<(String, String)> {
    let id = v.get("id")?.as_str()?.to_owned();
    let name = v.get("name").map(|n| cell(Some(n))).filter(|n| !n.is_empty()).unwrap_or_else(|| id.clone());
    Some((id, name))
}

pub async fn show(
    State(state): State<AppState>,
    s: Session,
    Path((segment, id)): Path<(String, String)>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let entity = readable(&s, &segment)?;
    let input = GetRecordsInput { records: vec![RecordRef { entity, id: id.clone() }], fields: None };
    let mut got = records::get(&state.store, &s.principal, input).await?;
    if got.items.is_empty() {
        return Err(PageError::not_found());
    }
    let item = got.items.remove(0);
    let def = entity.def();
    let mut fields = Vec::new();
    let mut related = Vec::new();
    for f in def.fields {
        let v = item.get(f.name);
        match f.ty {
            FieldType::Id => continue,
            FieldType::Relation => {
                let key = f.name.trim_end_matches("_id");
                if let (Some(target), Some((rid, name))) = (f.target, item.get(key).and_then(reference)) {
                    fields.push(FieldRow {
                        name: key.replace('_', " "),
                        value: name,
                        href: Some(format!("/records/{}/{rid}", target.def().plural)),
                    });
                }
                continue;
            }
            FieldType::Relations => {
                let Some(target) = f.target else { continue };
                let plural = target.def().plural;
                let list = item.get(plural).and_then(Value::as_array).cloned().unwrap_or_default();
                let items: Vec<(String, String)> = list
                    .iter()
                    .filter_map(reference)
                    .map(|(rid, name)| (format!("/records/{plural}/{rid}"), name))
                    .collect();
                let count = item.get(&format!("{}_count", target.as_str())).and_then(Value::as_u64);
                if !items.is_empty() {
                    related.push(Related { title: title(plural), count, items });
                }
                continue;
            }
            FieldType::RecordRef => {
                let r =
                    v.and_then(|r| Some((r.get("entity")?.as_str()?.to_owned(), r.get("id")?.as_str()?.to_owned())));
                if let Some((e, rid)) = r
                    && let Some(target) = entity_of(&e)
                {
                    fields.push(FieldRow {
                        name: f.name.replace('_', " "),
                        value: format!("{e} {rid}"),
                        href: Some(format!("/records/{}/{rid}", target.def().plural)),
                    });
                }
                continue;
            }
            _ => {}
        }
        let value = match (f.ty, v.and_then(Value::as_str).and_then(crate::time::parse_instant)) {
            (FieldType::Datetime, Some(at)) => when(at),
            _ => cell(v),
        };
        if !value.is_empty() {
            fields.push(FieldRow { name: f.name.replace('_', " "), value, href: None });
        }
    }
    let custom = item
        .get("custom")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().map(|(k, v)| FieldRow { name: k.replace('_', " "), value: cell(Some(v)), href: None }).collect()
        })
        .unwrap_or_default();
    if let Some(notes) = item.get("notes").and_then(Value::as_array).filter(|n| !n.is_empty()) {
        let items = notes
            .iter()
            .filter_map(|n| {
                let nid = n.get("id")?.as_str()?;
                let body = cell(n.get("body"));
                let body = if body.chars().count() > 140 {
                    format!("{}…", body.chars().take(139).collect::<String>())
                } else {
                    body
                };
                Some((format!("/records/notes/{nid}"), body))
            })
            .collect();
        related.push(Related { title: "Newest notes".into(), count: None, items });
    }
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let t = timeline::timeline(
        &state.store,
        &s.principal,
        GetTimelineInput { entity, id: id.clone(), limit: Some(25), cursor },
    )
    .await?;
    let plural = def.plural;
    let timeline = t
        .items
        .into_iter()
        .map(|c| {
            let at = crate::time::parse_instant(&c.at).unwrap_or_default();
            let about = if c.record_id == id { String::new() } else { format!("{} {}", c.entity, c.record_id) };
            Entry {
                when: when(at),
                ago: ago(at),
                actor: c.actor.name.clone().or(c.actor.user_email.clone()).unwrap_or(c.actor.kind.clone()),
                action: c.action,
                about,
                fields: c
                    .changes
                    .iter()
                    .take(8)
                    .map(|(k, v)| FieldChange {
                        field: k.replace('_', " "),
                        before: cell(v.get("before")),
                        after: cell(v.get("after")),
                    })
                    .collect(),
            }
        })
        .collect();
    let page = RecordPage {
        c: Chrome::new(&s, label_of(entity, &item), "/records", None),
        tabs: tabs(&s, entity),
        plural: plural.to_owned(),
        label: label_of(entity, &item),
        fields,
        custom,
        related,
        timeline,
        more_timeline: t.next_cursor.map(|c| format!("/records/{plural}/{id}?cursor={}", urlencode(&c))),
    };
    Ok(render(&page))
}
