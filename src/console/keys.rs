//! Settings → API keys: the list in enabled and disabled sections, the create dialog, the
//! key shown once with the connect card, rename, the status toggle, rotate, revoke and
//! delete. Every action goes through `keys::` exactly as the API's do, with the person as
//! the audit actor and their role's scopes as the limit of what they can grant.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rapport_clients::Kind;
use rapport_tools::approvals::{ApprovalKind, ApprovalPolicy, DEFAULT_BULK_LIMIT};
use rapport_tools::{Role, Scope};
use serde::Deserialize;

use super::session::{Posted, Session};
use super::{Chrome, Flash, PageError, PageResult, ago, back, cleared, outcome, render, take_flash, when};
use crate::keys::connect::{ConnectRequest, Connection, KeySource};
use crate::keys::{self, CreatedKey, KeyError, KeyView, NewKeyRequest, RECENT_USE_MS};
use crate::state::AppState;
use crate::store::{KeyId, KeyRecord, KeyStatus};
use crate::time;

const PAGE: &str = "/settings/keys";

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub preview: String,
    pub access: String,
    pub scopes: String,
    pub status: &'static str,
    pub last_used: Option<String>,
    pub last_used_ago: String,
    pub last_used_ip: String,
    pub expires: String,
    pub expired: bool,
    pub created: String,
    pub cidrs: String,
    /// Whether its powers are within the person's own: rotating and enabling hand them over.
    pub within: bool,
    /// The calls that wait for a person, in words; empty when none do.
    pub approval: String,
    /// The policy's form: each kind, checked when held.
    pub approval_kinds: Vec<Choice>,
    pub bulk_limit: u32,
}

impl KeyRow {
    /// `seen` is a use this process saw and has not written yet.
    fn new(k: &KeyRecord, seen: Option<crate::store::KeyUse>, holder: &rapport_tools::Scopes) -> KeyRow {
        let (last, ip) = match seen {
            Some(u) if Some(u.at) > k.last_used_at => (Some(u.at), Some(u.ip)),
            _ => (k.last_used_at, k.last_used_ip.clone()),
        };
        KeyRow {
            id: k.id.to_string(),
            name: k.name.clone(),
            preview: format!("{}…", k.preview),
            access: match k.role {
                Some(r) => format!("Role: {r}"),
                None => format!("{} scopes", k.scopes.len()),
            },
            scopes: k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            status: k.status.as_str(),
            last_used: last.map(when),
            last_used_ago: last.map(ago).unwrap_or_else(|| "Never used".into()),
            last_used_ip: ip.unwrap_or_default(),
            expires: k.expires_at.map(when).unwrap_or_else(|| "Never".into()),
            expired: k.expires_at.is_some_and(|e| e <= time::now_ms()),
            created: when(k.created_at),
            cidrs: k.allowed_cidrs.join(", "),
            within: k.scopes.first_beyond(holder).is_none(),
            approval: k.approval.as_ref().map(ApprovalPolicy::words).unwrap_or_default(),
            approval_kinds: kind_choices(
                k.approval.as_ref().map(|p| p.kinds.iter().map(|k| k.as_str()).collect()).unwrap_or_default(),
            ),
            bulk_limit: k.approval.as_ref().map_or(DEFAULT_BULK_LIMIT, |p| p.bulk_limit),
        }
    }
}

/// Each kind of call a policy may hold, checked when `held` names it.
fn kind_choices(held: Vec<&str>) -> Vec<Choice> {
    [
        ("delete", "Deletes and merges"),
        ("bulk", "Bulk changes"),
        ("schema", "Custom fields and pipelines"),
        ("webhooks", "Webhooks"),
    ]
    .into_iter()
    .map(|(v, l)| Choice { value: v.into(), label: l.into(), selected: held.contains(&v) })
    .collect()
}

/// A policy from a form's `approval` checkboxes and `bulk_limit`.
fn policy_of(kinds: &[String], bulk_limit: &str) -> Result<Option<ApprovalPolicy>, String> {
    let kinds = kinds.iter().map(|k| ApprovalKind::parse(k)).collect::<Result<Vec<_>, _>>()?;
    let limit = match bulk_limit.trim() {
        "" => None,
        n => Some(n.parse::<u32>().map_err(|_| "The bulk limit is a number of records.".to_owned())?),
    };
    ApprovalPolicy::new(kinds, limit)
}

/// One client's tab of the connect card.
pub struct ConnectTab {
    pub client: String,
    pub title: String,
    pub value: String,
    pub instructions: String,
    /// A link to click (Cursor's "Add to Cursor").
    pub link: Option<String>,
    pub more: Vec<Alternative>,
    /// What may keep it from working (a connector URL the internet cannot reach).
    pub warnings: Vec<String>,
}

pub struct Alternative {
    pub value: String,
    pub instructions: String,
    pub link: Option<String>,
}

fn link_label(client: &str) -> String {
    match client {
        "cursor" => "Add to Cursor".into(),
        "vscode" => "Install in VS Code".into(),
        other => format!("Open in {other}"),
    }
}

impl ConnectTab {
    fn new(c: Connection) -> ConnectTab {
        let client = c.client.as_str().to_owned();
        let link = (c.kind == Kind::Deeplink).then(|| c.value.clone());
        ConnectTab {
            warnings: c.warnings,
            title: c.client.title().to_owned(),
            value: c.value,
            instructions: c.instructions,
            link,
            more: c
                .alternatives
                .into_iter()
                .map(|a| Alternative {
                    link: (a.kind == Kind::Deeplink).then(|| a.value.clone()),
                    value: a.value,
                    instructions: a.instructions,
                })
                .collect(),
            client,
        }
    }

    pub fn link_label(&self) -> String {
        link_label(&self.client)
    }
}

/// A secret shown this once, with the connect card that uses it.
pub struct Revealed {
    pub heading: String,
    pub note: String,
    pub key_id: KeyId,
    pub key: String,
    pub tabs: Vec<ConnectTab>,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    c: Chrome,
    enabled: Vec<KeyRow>,
    disabled: Vec<KeyRow>,
    revoked: Vec<KeyRow>,
    max_active: u32,
    revealed: Option<Revealed>,
    /// The create form, open after a refused create so its values can be fixed.
    create_open: bool,
    form: CreateValues,
    roles: Vec<Choice>,
    scopes: Vec<Choice>,
    expiries: Vec<Choice>,
    approval_kinds: Vec<Choice>,
}

#[derive(Default, Clone)]
struct CreateValues {
    name: String,
    role: String,
    scopes: Vec<String>,
    expires_in_days: String,
    allowed_cidrs: String,
    approval: Vec<String>,
    bulk_limit: String,
}

async fn keys_page(
    state: &AppState,
    s: &Session,
    flash: Option<Flash>,
    revealed: Option<Revealed>,
    form: Option<CreateValues>,
) -> Result<KeysPage, PageError> {
    s.require(Scope::KeysManage)?;
    let all = state.store.list_keys(&s.principal.org.id, true).await?;
    let mut page = KeysPage {
        c: Chrome::new(s, "API keys", PAGE, flash),
        enabled: Vec::new(),
        disabled: Vec::new(),
        revoked: Vec::new(),
        max_active: state.settings.max_active_keys,
        revealed,
        create_open: form.is_some(),
        form: CreateValues::default(),
        roles: Vec::new(),
        scopes: Vec::new(),
        expiries: Vec::new(),
        approval_kinds: Vec::new(),
    };
    for k in &all {
        let row = KeyRow::new(k, state.usage.last(&k.id), &s.principal.scopes);
        match k.status {
            KeyStatus::Enabled => page.enabled.push(row),
            KeyStatus::Disabled => page.disabled.push(row),
            KeyStatus::Revoked => page.revoked.push(row),
        }
    }
    let form = form.unwrap_or_else(|| CreateValues { role: Role::Member.as_str().to_owned(), ..Default::default() });
    let grantable = crate::keys::access::grantable_roles(&s.principal);
    let role = if form.role.is_empty() { "member".to_owned() } else { form.role.clone() };
    page.roles = grantable
        .iter()
        .map(|r| Choice { value: r.as_str().into(), label: role_label(*r), selected: r.as_str() == role })
        .chain(std::iter::once(Choice {
            value: "custom".into(),
            label: "Custom scopes (choose below)".into(),
            selected: role == "custom",
        }))
        .collect();
    page.scopes = s
        .principal
        .scopes
        .iter()
        .map(|sc| Choice {
            value: sc.as_str().into(),
            label: sc.as_str().into(),
            selected: form.scopes.iter().any(|x| x == sc.as_str()),
        })
        .collect();
    page.expiries = [("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]
        .iter()
        .map(|(v, l)| Choice { value: (*v).into(), label: (*l).into(), selected: *v == form.expires_in_days })
        .collect();
    page.approval_kinds = kind_choices(form.approval.iter().map(String::as_str).collect());
    page.form = form;
    Ok(page)
}

fn role_label(r: Role) -> String {
    match r {
        Role::Viewer => "Viewer: read records".into(),
        Role::Member => "Member: read and write records (agents)".into(),
        Role::Admin => "Admin: also delete records and manage keys, users, schema".into(),
        Role::Owner => "Owner: everything, including the organization".into(),
    }
}

pub async fn page(State(state): State<AppState>, s: Session, headers: HeaderMap) -> PageResult {
    let flash = take_flash(&headers);
    let had = flash.is_some();
    let page = keys_page(&state, &s, flash, None, None).await?;
    Ok(cleared(render(&page), had))
}

/// The create form on a page of its own, for browsers without scripts (the dialog's
/// content otherwise).
pub async fn new_page(State(state): State<AppState>, s: Session) -> PageResult {
    let mut page = keys_page(&state, &s, None, None, None).await?;
    page.create_open = true;
    Ok(render(&page))
}

fn parse_create(pairs: Vec<(String, String)>) -> CreateValues {
    let mut v = CreateValues::default();
    for (k, val) in pairs {
        match k.as_str() {
            "name" => v.name = val,
            "role" => v.role = val,
            "scope" => v.scopes.push(val),
            "expires_in_days" => v.expires_in_days = val,
            "allowed_cidrs" => v.allowed_cidrs = val,
            "approval" => v.approval.push(val),
            "bulk_limit" => v.bulk_limit = val,
            _ => {}
        }
    }
    v
}

fn status_of(e: &KeyError) -> StatusCode {
    match e {
        KeyError::Limit(_) | KeyError::Revoked(_) | KeyError::NeedsConfirmation(_) => StatusCode::CONFLICT,
        KeyError::Forbidden(_) => StatusCode::FORBIDDEN,
        KeyError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn reveal(
    state: &AppState,
    s: &Session,
    created: &CreatedKey,
    heading: String,
    note: String,
) -> Result<Revealed, PageError> {
    let secret = crate::auth::key::PlainKey::parse(&created.key).map_err(|_| PageError::not_found())?;
    let req = ConnectRequest {
        client: "all",
        name: None,
        public_url: &state.settings.public_url,
        query_keys: state.settings.query_keys,
        key: KeySource::Supplied(&secret),
        user_email: None,
        profile: Default::default(),
    };
    let tabs = keys::connect::connect(&state.store, &s.principal, req, state.settings.max_active_keys)
        .await?
        .into_iter()
        .map(ConnectTab::new)
        .collect();
    Ok(Revealed { heading, note, key_id: created.id.clone(), key: created.key.clone(), tabs })
}

/// A page answering a form that showed a secret: never cached, never stored.
fn secret_page(page: &KeysPage, status: StatusCode) -> Response {
    (status, render(page)).into_response()
}

pub async fn create(State(state): State<AppState>, Posted { session: s, pairs, .. }: Posted) -> PageResult {
    let form = parse_create(pairs);
    s.require(Scope::KeysManage)?;
    let (role, scopes) = match form.role.as_str() {
        "custom" => (None, form.scopes.clone()),
        "" => (None, Vec::new()),
        r => (Some(r.to_owned()), Vec::new()),
    };
    if form.role == "custom" && scopes.is_empty() {
        let page =
            keys_page(&state, &s, Flash::error("Choose at least one scope, or pick a role."), None, Some(form)).await?;
        return Ok(secret_page(&page, StatusCode::BAD_REQUEST));
    }
    let expires_in_days = match form.expires_in_days.trim() {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                let page = keys_page(&state, &s, Flash::error("Expiry is a number of days."), None, Some(form)).await?;
                return Ok(secret_page(&page, StatusCode::BAD_REQUEST));
            }
        },
    };
    let approval = match policy_of(&form.approval, &form.bulk_limit) {
        Ok(p) => p,
        Err(e) => {
            let page = keys_page(&state, &s, Flash::error(e), None, Some(form)).await?;
            return Ok(secret_page(&page, StatusCode::BAD_REQUEST));
        }
    };
    let req = NewKeyRequest {
        approval,
        name: form.name.clone(),
        role,
        scopes,
        expires_in_days,
        allowed_cidrs: form
            .allowed_cidrs
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        user_email: Some(s.user.email.clone()),
    };
    match keys::create(&state.store, &s.principal, req, state.settings.max_active_keys).await {
        Ok(created) => {
            let note = "Copy the key now: it is shown only this once. Rapport keeps only its digest.".to_owned();
            let revealed = reveal(&state, &s, &created, format!("Key “{}” created", created.name), note).await?;
            let page = keys_page(&state, &s, None, Some(revealed), None).await?;
            Ok(secret_page(&page, StatusCode::CREATED))
        }
        Err(KeyError::Store(e)) => Err(e.into()),
        Err(e) => {
            let page = keys_page(&state, &s, Flash::error(e.to_string()), None, Some(form)).await?;
            Ok(secret_page(&page, status_of(&e)))
        }
    }
}

/// The connect card on its own: a key made for the connection (SPEC section 6), shown
/// once with every client's command or link.
pub async fn connect(State(state): State<AppState>, Posted { session: s, .. }: Posted) -> PageResult {
    s.require(Scope::KeysManage)?;
    let req = ConnectRequest {
        client: "all",
        name: None,
        public_url: &state.settings.public_url,
        query_keys: state.settings.query_keys,
        key: KeySource::Create,
        user_email: Some(&s.user.email),
        profile: Default::default(),
    };
    match keys::connect::connect(&state.store, &s.principal, req, state.settings.max_active_keys).await {
        Ok(list) => {
            let key_id = list.first().map(|c| c.key_id.clone()).unwrap_or_default();
            let key = state.store.get_key(&s.principal.org.id, &key_id).await?.ok_or_else(PageError::not_found)?;
            let tabs: Vec<ConnectTab> = list.into_iter().map(ConnectTab::new).collect();
            let secret = tabs.first().map(|t| secret_in(&t.value)).unwrap_or_default();
            let revealed = Revealed {
                heading: "Connect an agent".into(),
                note: format!(
                    "A new key, “{}” ({}), was created for this connection. Copy what you need now: the key is shown only this once.",
                    key.name, key.preview
                ),
                key_id,
                key: secret,
                tabs,
            };
            let page = keys_page(&state, &s, None, Some(revealed), None).await?;
            Ok(secret_page(&page, StatusCode::CREATED))
        }
        Err(KeyError::Store(e)) => Err(e.into()),
        Err(e) => Ok(back(PAGE, Flash::error(e.to_string()))),
    }
}

/// The key inside an install command (every client's carries it).
fn secret_in(value: &str) -> String {
    let start = value.find(crate::auth::key::PREFIX);
    start.map(|i| value[i..].chars().take(crate::auth::key::KEY_LEN).collect()).unwrap_or_default()
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

fn done(result: Result<KeyView, KeyError>, ok: impl FnOnce(&KeyView) -> String) -> PageResult {
    outcome(PAGE, result, ok)
}

/// The calls of a key that wait for a person (SPEC 12): set, tightened or removed.
pub async fn approval(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    Posted { session: s, pairs, .. }: Posted,
) -> PageResult {
    s.require(Scope::KeysManage)?;
    let kinds: Vec<String> = pairs.iter().filter(|(k, _)| k == "approval").map(|(_, v)| v.clone()).collect();
    let limit = pairs.iter().find(|(k, _)| k == "bulk_limit").map_or("", |(_, v)| v.as_str());
    let policy = match policy_of(&kinds, limit) {
        Ok(p) => p,
        Err(e) => return Ok(back(PAGE, Flash::error(e))),
    };
    done(keys::set_approval(&state.store, &s.principal, &id, policy).await, |k| match &k.approval {
        Some(p) => format!("“{}” now waits for a person's approval on: {}.", k.name, p.words()),
        None => format!("“{}” no longer waits for approval.", k.name),
    })
}

pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    Posted { session: s, form: f, .. }: Posted<RenameForm>,
) -> PageResult {
    s.require(Scope::KeysManage)?;
    done(keys::rename(&state.store, &s.principal, &id, &f.name).await, |k| format!("Renamed the key to “{}”.", k.name))
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    enabled: String,
}

pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    Posted { session: s, form: f, .. }: Posted<StatusForm>,
) -> PageResult {
    s.require(Scope::KeysManage)?;
    let actor = &s.principal;
    if f.enabled == "true" {
        let r = keys::enable(&state.store, actor, &id, state.settings.max_active_keys).await;
        done(r, |k| format!("Enabled “{}”: it works again.", k.name))
    } else {
        let r = keys::disable(&state.store, actor, &id).await;
        done(r, |k| format!("Disabled “{}”: it is refused until you enable it.", k.name))
    }
}

#[derive(Template)]
#[template(path = "key_confirm.html")]
struct ConfirmPage {
    c: Chrome,
    action: &'static str,
    key: KeyRow,
    recent: bool,
    graces: Vec<Choice>,
}

fn action_of(uri: &axum::http::Uri) -> &'static str {
    ["rotate", "revoke", "delete"].into_iter().find(|a| uri.path().ends_with(a)).unwrap_or("delete")
}

async fn confirm(
    state: &AppState,
    s: &Session,
    id: &KeyId,
    action: &'static str,
    flash: Option<Flash>,
) -> Result<ConfirmPage, PageError> {
    s.require(Scope::KeysManage)?;
    let record: KeyRecord = keys::show(&state.store, &s.principal, id).await?;
    let seen = state.usage.last(&record.id);
    let last = record.last_used_at.max(seen.as_ref().map(|u| u.at));
    let title = match action {
        "rotate" => "Rotate key",
        "revoke" => "Revoke key",
        _ => "Delete key",
    };
    Ok(ConfirmPage {
        c: Chrome::new(s, title, PAGE, flash),
        action,
        recent: last.is_some_and(|at| at > time::now_ms() - RECENT_USE_MS),
        key: KeyRow::new(&record, seen, &s.principal.scopes),
        graces: [
            ("0", "None: the old secret stops now"),
            ("1", "1 hour"),
            ("24", "24 hours"),
            ("72", "3 days"),
            ("168", "7 days"),
        ]
        .iter()
        .map(|(v, l)| Choice { value: (*v).into(), label: (*l).into(), selected: *v == "0" })
        .collect(),
    })
}

pub async fn confirm_page(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<KeyId>,
    uri: axum::http::Uri,
) -> PageResult {
    let page = confirm(&state, &s, &id, action_of(&uri), None).await?;
    if page.key.status == KeyStatus::Revoked.as_str() && page.action != "delete" {
        return Ok(back(PAGE, Flash::error(format!("“{}” is revoked; it can only be deleted.", page.key.name))));
    }
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_hours: Option<u32>,
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    Posted { session: s, form: f, .. }: Posted<RotateForm>,
) -> PageResult {
    s.require(Scope::KeysManage)?;
    match keys::rotate(&state.store, &s.principal, &id, f.grace_hours).await {
        Ok(created) => {
            let note = match f.grace_hours.filter(|h| *h > 0) {
                Some(h) => format!(
                    "The old secret keeps working for {h} hours, then is refused. Copy the new key now: it is shown only this once."
                ),
                None => {
                    "The old secret is refused from now on. Copy the new key now: it is shown only this once.".into()
                }
            };
            let revealed = reveal(&state, &s, &created, format!("Key “{}” rotated", created.name), note).await?;
            let page = keys_page(&state, &s, None, Some(revealed), None).await?;
            Ok(secret_page(&page, StatusCode::OK))
        }
        Err(KeyError::Store(e)) => Err(e.into()),
        Err(e) => Ok(back(PAGE, Flash::error(e.to_string()))),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    Posted { session: s, .. }: Posted,
) -> PageResult {
    s.require(Scope::KeysManage)?;
    done(keys::revoke(&state.store, &s.principal, &id).await, |k| {
        format!("Revoked “{}”: it is refused for good and stays listed for the record.", k.name)
    })
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    Posted { session: s, form: f, .. }: Posted<DeleteForm>,
) -> PageResult {
    s.require(Scope::KeysManage)?;
    let confirmed = f.confirm.as_deref() == Some("true");
    let recent = state.usage.last_use(&id);
    match keys::delete(&state.store, &s.principal, &id, confirmed, recent).await {
        Ok(k) => Ok(back(PAGE, Flash::ok(format!("Deleted “{}”.", k.name)))),
        Err(KeyError::Store(e)) => Err(e.into()),
        Err(e @ KeyError::NeedsConfirmation(_)) => {
            let page = confirm(&state, &s, &id, "delete", Flash::error(e.to_string())).await?;
            Ok((StatusCode::CONFLICT, render(&page)).into_response())
        }
        Err(e) => Ok(back(PAGE, Flash::error(e.to_string()))),
    }
}
