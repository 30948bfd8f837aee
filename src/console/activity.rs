//! Activity (the change log: what each key and person changed) and Settings → Audit log
//! (key, user and organization actions). Both newest first, filtered, paged by cursor.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use rapport_tools::{Entity, Scope};
use serde::Deserialize;
use serde_json::Value;

use super::keys::Choice;
use super::session::Session;
use super::{Chrome, PageError, PageResult, ago, cleared, entity_of, render, take_flash, urlencode, when};
use crate::crm::cursor;
use crate::state::AppState;
use crate::store::{AuditFilter, ChangeFilter, KeyId, UserId};

const PAGE_SIZE: u32 = 50;

pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

pub struct ChangeRow {
    pub id: String,
    pub when: String,
    pub ago: String,
    pub actor: String,
    pub actor_kind: String,
    pub action: String,
    pub entity: String,
    pub record_id: String,
    /// The record's name as it is now, when it still exists.
    pub name: String,
    pub href: Option<String>,
    pub fields: Vec<FieldChange>,
    pub more: usize,
    /// How it came: the tool and the client, in words.
    pub via: String,
    /// When this entry starts a run (the changes one call made, more than one), its head.
    pub run: Option<RunHead>,
    /// The page that previews undoing it, for someone who may.
    pub undo: Option<String>,
    /// It undid other changes.
    pub reverts: bool,
}

/// The head of a run: the changes of one call, shown together.
pub struct RunHead {
    pub count: usize,
    /// The run's changes alone.
    pub href: String,
    /// The page that previews undoing the run, for someone who may.
    pub undo: Option<String>,
}

/// A value as one short line.
fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 { format!("{}…", s.chars().take(79).collect::<String>()) } else { s }
}

#[derive(Deserialize, Default)]
pub struct ActivityQuery {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    entity: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    /// One call's changes (its request id).
    #[serde(default)]
    call: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    c: Chrome,
    rows: Vec<ChangeRow>,
    keys: Vec<Choice>,
    users: Vec<Choice>,
    entities: Vec<Choice>,
    clients: Vec<Choice>,
    tools: Vec<Choice>,
    /// The call the page is narrowed to, when it is.
    call: Option<String>,
    /// Undo for the call the page is narrowed to.
    undo_call: Option<String>,
    filtered: bool,
    next: Option<String>,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn decode(c: Option<String>) -> Result<Option<(i64, String)>, PageError> {
    match nonempty(c) {
        None => Ok(None),
        Some(c) => cursor::decode_at_id(&c).map(Some).ok_or_else(|| {
            PageError::new(axum::http::StatusCode::BAD_REQUEST, "That page link is not one this console made.")
        }),
    }
}

fn choices(items: impl IntoIterator<Item = (String, String)>, current: Option<&str>) -> Vec<Choice> {
    items.into_iter().map(|(value, label)| Choice { selected: current == Some(value.as_str()), value, label }).collect()
}

/// The link to the next page: the same filters, past the last entry shown.
fn next_link(base: &str, filters: &[(&str, &Option<String>)], last: Option<(i64, &str)>) -> Option<String> {
    let (at, id) = last?;
    let mut q: Vec<String> =
        filters.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v)))).collect();
    q.push(format!("cursor={}", urlencode(&cursor::encode_at_id(at, id))));
    Some(format!("{base}?{}", q.join("&")))
}

/// The current names of the records a page of changes is about, read once per entity.
pub(super) async fn record_names(
    state: &AppState,
    p: &crate::crm::Principal,
    changes: &[crate::store::Change],
) -> Result<HashMap<(String, String), String>, PageError> {
    let mut names = HashMap::new();
    for e in Entity::ALL.iter().copied().filter(|e| p.scopes.contains(&e.def().read)) {
        let ids: Vec<crate::store::RecordId> = changes
            .iter()
            .filter(|c| c.entity == e.into())
            .map(|c| crate::store::RecordId::from(c.record_id.as_str()))
            .collect();
        if ids.is_empty() {
            continue;
        }
        for r in state.store.get_records(&p.org.id, e, &ids).await? {
            names.insert((e.as_str().to_owned(), r.id.as_str().to_owned()), crate::crm::records::label(&r));
        }
    }
    Ok(names)
}

/// A filter menu's choices: each `(id, full label, name)`. Someone who may manage them sees
/// the full label with the id as value; anyone else the name only, with an opaque value in
/// place of the id (SPEC 8: no key previews, ids or emails for them).
pub(super) struct Menu {
    manages: bool,
    items: Vec<(String, String, String)>,
}

impl Menu {
    fn value(&self, id: &str) -> String {
        if self.manages {
            return id.to_owned();
        }
        let digest = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The id a filter's value stands for; a value that stands for none matches nothing.
    fn id_of(&self, value: Option<String>) -> Option<String> {
        let value = nonempty(value)?;
        let found = self.items.iter().find(|(id, ..)| self.value(id) == value).map(|(id, ..)| id.clone());
        Some(found.unwrap_or(value))
    }

    /// Who made a change, as this menu names people: a person's name or, for those who
    /// manage people, the email it falls back to.
    fn actor_name(&self, a: &crate::store::ChangeActor) -> String {
        let named = a.name.clone().or(a.user_email.clone()).unwrap_or_else(|| a.kind.to_owned());
        if self.manages || a.kind != "user" {
            return named;
        }
        let person = self.items.iter().find(|(id, ..)| Some(id.as_str()) == a.user_id.as_ref().map(UserId::as_str));
        person.map_or_else(|| "(a person)".to_owned(), |(.., name)| name.clone())
    }

    fn choices(&self, current: Option<&str>) -> Vec<Choice> {
        let shown = self.items.iter().map(|(id, full, name)| {
            let label = if self.manages { full.clone() } else { name.clone() };
            (self.value(id), label)
        });
        choices(shown, current.map(|c| self.value(c)).as_deref())
    }
}

pub async fn activity(
    State(state): State<AppState>,
    s: Session,
    headers: axum::http::HeaderMap,
    Query(q): Query<ActivityQuery>,
) -> PageResult {
    let flash = take_flash(&headers);
    let had_flash = flash.is_some();
    let p = &s.principal;
    let readable: Vec<Entity> = Entity::ALL.iter().copied().filter(|e| p.scopes.contains(&e.def().read)).collect();
    if readable.is_empty() {
        return Err(PageError::forbidden());
    }
    let keys = Menu {
        manages: p.scopes.contains(&Scope::KeysManage),
        items: state
            .store
            .list_keys(&p.org.id, true)
            .await?
            .into_iter()
            .map(|k| (k.id.into_string(), format!("{} ({}…)", k.name, k.preview), k.name))
            .collect(),
    };
    let users = people_menu(&state, p).await?;
    let filter = ChangeFilter {
        key_id: keys.id_of(q.key).map(KeyId::from),
        user_id: users.id_of(q.user).map(UserId::from),
        entity: nonempty(q.entity),
        client: nonempty(q.client),
        tool: nonempty(q.tool),
        request_id: nonempty(q.call),
        visible: Some(p.visible_changes()),
        ..Default::default()
    };
    if let Some(e) = &filter.entity
        && !entity_of(e).is_some_and(|e| readable.contains(&e))
    {
        return Err(PageError::forbidden());
    }
    let before = decode(q.cursor)?;
    let mut changes = state.store.list_changes(&p.org.id, &filter, before, PAGE_SIZE + 1).await?;
    let more = changes.len() > PAGE_SIZE as usize;
    changes.truncate(PAGE_SIZE as usize);
    let next = if more {
        let (key, user) = (
            filter.key_id.as_ref().map(|k| keys.value(k.as_str())),
            filter.user_id.as_ref().map(|u| users.value(u.as_str())),
        );
        let f = [
            ("key", &key),
            ("user", &user),
            ("entity", &filter.entity),
            ("client", &filter.client),
            ("tool", &filter.tool),
            ("call", &filter.request_id),
        ];
        next_link("/activity", &f, changes.last().map(|c| (c.at, c.id.as_str())))
    } else {
        None
    };
    let names = record_names(&state, p, &changes).await?;
    // Consecutive entries of one call form a run: its head counts them and narrows to them.
    let may_undo = p.scopes.contains(&Scope::ChangesRevert);
    let run_of = |i: usize| changes[i].via.request_id.clone();
    let mut runs: Vec<Option<RunHead>> = Vec::with_capacity(changes.len());
    for i in 0..changes.len() {
        let starts = i == 0 || run_of(i - 1) != run_of(i);
        let count = (i..changes.len()).take_while(|j| run_of(*j) == run_of(i)).count();
        runs.push(match run_of(i) {
            Some(r) if starts && count > 1 && filter.request_id.is_none() => {
                let undo = may_undo.then(|| format!("/activity/undo?call={}", urlencode(&r)));
                Some(RunHead { count, href: format!("/activity?call={}", urlencode(&r)), undo })
            }
            _ => None,
        });
    }
    let rows = changes.into_iter().zip(runs).map(|(c, run)| change_row(c, run, &names, &users, may_undo)).collect();
    let clients = state.store.change_values(&p.org.id, "client_name").await?;
    let tools = state.store.change_values(&p.org.id, "tool").await?;
    let page = ActivityPage {
        c: Chrome::new(&s, "Activity", "/activity", flash),
        undo_call: filter
            .request_id
            .as_ref()
            .filter(|_| may_undo)
            .map(|r| format!("/activity/undo?call={}", urlencode(r))),
        rows,
        keys: keys.choices(filter.key_id.as_ref().map(KeyId::as_str)),
        users: users.choices(filter.user_id.as_ref().map(UserId::as_str)),
        entities: choices(
            readable.iter().map(|e| (e.as_str().to_owned(), e.def().plural.to_owned())),
            filter.entity.as_deref(),
        ),
        clients: choices(clients.into_iter().map(|c| (c.clone(), c)), filter.client.as_deref()),
        tools: choices(tools.into_iter().map(|t| (t.clone(), t.replace('_', " "))), filter.tool.as_deref()),
        filtered: filter.key_id.is_some()
            || filter.user_id.is_some()
            || filter.entity.is_some()
            || filter.client.is_some()
            || filter.tool.is_some()
            || filter.request_id.is_some(),
        call: filter.request_id.clone(),
        next,
    };
    Ok(cleared(render(&page), had_flash))
}

/// The people of the organization, as a menu and to name who made a change.
pub(super) async fn people_menu(state: &AppState, p: &crate::crm::Principal) -> Result<Menu, PageError> {
    let items = state
        .store
        .list_users(&p.org.id)
        .await?
        .into_iter()
        .map(|u| {
            let name = u.name.clone().unwrap_or_else(|| "(no name)".into());
            (u.id.into_string(), u.email, name)
        })
        .collect();
    Ok(Menu { manages: p.scopes.contains(&Scope::UsersManage), items })
}

/// One change as the feed shows it.
pub(super) fn change_row(
    c: crate::store::Change,
    run: Option<RunHead>,
    names: &HashMap<(String, String), String>,
    users: &Menu,
    may_undo: bool,
) -> ChangeRow {
    let record_entity = c.entity.record();
    let live = c.action != crate::store::ChangeAction::Purged;
    let fields: Vec<FieldChange> = c
        .changes
        .iter()
        .take(6)
        .map(|(k, v)| FieldChange {
            field: k.clone(),
            before: short(v.get("before").unwrap_or(&Value::Null)),
            after: short(v.get("after").unwrap_or(&Value::Null)),
        })
        .collect();
    ChangeRow {
        undo: (may_undo && live).then(|| format!("/activity/undo?change={}", urlencode(&c.id))),
        id: c.id,
        when: when(c.at),
        ago: ago(c.at),
        actor: users.actor_name(&c.actor),
        actor_kind: c.actor.kind.to_owned(),
        action: c.action.as_str().to_owned(),
        entity: c.entity.words(),
        href: record_entity.filter(|_| live).map(|e| format!("/records/{}/{}", e.def().plural, c.record_id)),
        name: names.get(&(c.entity.as_str().to_owned(), c.record_id.clone())).cloned().unwrap_or_default(),
        record_id: c.record_id,
        more: c.changes.len().saturating_sub(fields.len()),
        fields,
        via: via_words(&c.via),
        reverts: !c.reverts.is_empty(),
        run,
    }
}

/// How a change came, in words: `create contacts from claude-code 2.1`.
pub(super) fn via_words(v: &crate::store::Via) -> String {
    let tool = v.tool.as_deref().map(|t| t.replace('_', " "));
    let client = v.client.as_ref().map(|c| match &c.version {
        Some(ver) => format!("{} {ver}", c.name),
        None => c.name.clone(),
    });
    match (tool, client) {
        (Some(t), Some(c)) => format!("{t}, from {c}"),
        (Some(t), None) => t,
        (None, Some(c)) => format!("from {c}"),
        (None, None) => String::new(),
    }
}

pub struct AuditRow {
    pub when: String,
    pub ago: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    rows: Vec<AuditRow>,
    actions: Vec<Choice>,
    keys: Vec<Choice>,
    filtered: bool,
    next: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

pub async fn audit(State(state): State<AppState>, s: Session, Query(q): Query<AuditQuery>) -> PageResult {
    s.require(Scope::AuditRead)?;
    let org = &s.principal.org;
    let filter = AuditFilter { action: nonempty(q.action), key_id: nonempty(q.key).map(KeyId::from) };
    let before = decode(q.cursor)?;
    let mut entries = state.store.list_audit(&org.id, &filter, before, PAGE_SIZE + 1).await?;
    let more = entries.len() > PAGE_SIZE as usize;
    entries.truncate(PAGE_SIZE as usize);
    let next = if more {
        let key = filter.key_id.as_ref().map(KeyId::to_string);
        let f = [("action", &filter.action), ("key", &key)];
        next_link("/settings/audit", &f, entries.last().map(|e| (e.at, e.id.as_str())))
    } else {
        None
    };
    let keys = state.store.list_keys(&org.id, true).await?;
    let users = state.store.list_users(&org.id).await?;
    let key_names: HashMap<&str, String> = keys.iter().map(|k| (k.id.as_str(), format!("key “{}”", k.name))).collect();
    let user_names: HashMap<&str, &str> = users.iter().map(|u| (u.id.as_str(), u.email.as_str())).collect();
    let rows = entries
        .iter()
        .map(|e| {
            let user =
                |u: &UserId| user_names.get(u.as_str()).map(|s| (*s).to_owned()).unwrap_or_else(|| format!("user {u}"));
            let actor = match &e.actor {
                crate::store::Actor::Key { key_id, user_id } => {
                    let key = key_names.get(key_id.as_str()).cloned().unwrap_or_else(|| format!("key {key_id}"));
                    format!("{key} of {}", user(user_id))
                }
                a => a.id().map_or_else(|| a.kind().to_owned(), user),
            };
            let target = match (e.target_type.as_deref(), e.target_id.as_deref()) {
                (Some("api_key"), Some(id)) => key_names.get(id).cloned().unwrap_or_else(|| format!("key {id}")),
                (Some("user"), Some(id)) => user(&id.into()),
                (Some(t), Some(id)) => format!("{t} {id}"),
                _ => String::new(),
            };
            AuditRow {
                when: when(e.at),
                ago: ago(e.at),
                actor,
                action: e.action.clone(),
                target,
                ip: e.ip.clone().unwrap_or_default(),
                details: if e.details.as_object().is_some_and(|m| m.is_empty()) {
                    String::new()
                } else {
                    e.details.to_string()
                },
            }
        })
        .collect();
    let actions = state.store.audit_actions(&org.id).await?;
    let page = AuditPage {
        c: Chrome::new(&s, "Audit log", "/settings/audit", None),
        rows,
        actions: choices(actions.into_iter().map(|a| (a.clone(), a)), filter.action.as_deref()),
        keys: choices(
            keys.into_iter().map(|k| (k.id.into_string(), format!("{} ({}…)", k.name, k.preview))),
            filter.key_id.as_ref().map(KeyId::as_str),
        ),
        filtered: filter.action.is_some() || filter.key_id.is_some(),
        next,
    };
    Ok(render(&page))
}
