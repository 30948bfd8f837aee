//! `/api/v1/keys`, `/api/v1/users`, `/api/v1/audit`: the key lifecycle over HTTP, for keys
//! holding `keys:manage`, `users:manage` and `audit:read`. Every answer is about the
//! caller's own organization.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use rapport_tools::Scope;
use rapport_tools::approvals::{ApprovalKind, ApprovalPolicy};
use schemars::JsonSchema;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use crate::auth::Principal;
use crate::keys::{self, KeyError, NewKeyRequest, users};
use crate::state::AppState;
use crate::store::KeyId;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}", get(show_key).patch(patch_key).delete(delete_key))
        .route("/keys/{id}/disable", post(disable_key))
        .route("/keys/{id}/enable", post(enable_key))
        .route("/keys/{id}/rotate", post(rotate_key))
        .route("/keys/{id}/revoke", post(revoke_key))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{email}", patch(update_user))
        .route("/audit", get(audit))
        .route("/approvals", get(list_approvals))
        .route("/approvals/{id}", get(show_approval))
        .route("/connect", post(connect))
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        let (status, code) = match &e {
            KeyError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            KeyError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            KeyError::Limit(_) => (StatusCode::CONFLICT, "key_limit_reached"),
            KeyError::Forbidden(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            KeyError::Revoked(_) => (StatusCode::CONFLICT, "key_revoked"),
            KeyError::NeedsConfirmation(_) => (StatusCode::CONFLICT, "confirmation_required"),
            KeyError::Store(s) if s.is_unavailable() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            KeyError::Store(crate::store::StoreError::Invalid(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
            }
            KeyError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "key administration failed");
            "an internal error occurred; it has been logged".to_owned()
        } else {
            e.to_string()
        };
        ApiError::new(status, code, message)
    }
}

type Caller = Extension<Arc<Principal>>;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListKeys {
    /// Include revoked keys.
    #[serde(default)]
    all: bool,
}

async fn list_keys(
    State(s): State<AppState>,
    Extension(p): Caller,
    ApiQuery(q): ApiQuery<ListKeys>,
) -> Result<Response, ApiError> {
    let mut list = keys::list(s.store.as_ref(), &p, q.all).await?;
    // Uses this process saw but has not written yet.
    for k in &mut list {
        k.seen(s.usage.last(&k.id));
    }
    Ok(Json(serde_json::json!({ "items": list })).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    /// What the key is for, e.g. `Claude Code on my laptop`.
    name: String,
    /// A preset of scopes; give this or `scopes`, not both. Default `member`.
    #[serde(default)]
    #[schemars(with = "Option<rapport_tools::Role>")]
    role: Option<String>,
    /// Exactly these scopes, none beyond the caller's own.
    #[serde(default)]
    #[schemars(with = "Vec<Scope>")]
    scopes: Vec<String>,
    /// Days until the key stops working; default never.
    #[serde(default)]
    #[schemars(range(min = 1))]
    expires_in_days: Option<u32>,
    /// Addresses the key may be used from, e.g. `203.0.113.0/24`; default anywhere.
    #[serde(default)]
    allowed_cidrs: Vec<String>,
    /// Email of the key's owner; default the caller's own user.
    #[serde(default)]
    user: Option<String>,
    /// Calls that wait for a person's approval. A key made by a key carries at least its
    /// creator's policy.
    #[serde(default)]
    approval: Option<ApprovalIn>,
}

/// An approval policy as a request gives it (SPEC 12).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalIn {
    /// delete, bulk, schema, webhooks.
    kinds: Vec<ApprovalKind>,
    /// With `bulk`: a call touching more distinct records than this waits (default 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    bulk_limit: Option<u32>,
}

impl ApprovalIn {
    fn policy(self) -> Result<Option<ApprovalPolicy>, ApiError> {
        ApprovalPolicy::new(self.kinds, self.bulk_limit).map_err(ApiError::invalid)
    }
}

/// `null` as given, told apart from absent.
fn given<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

async fn create_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    ApiJson(b): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    let req = NewKeyRequest {
        name: b.name,
        role: b.role,
        scopes: b.scopes,
        expires_in_days: b.expires_in_days,
        allowed_cidrs: b.allowed_cidrs,
        // Default: the caller's own user.
        user_email: b.user.or_else(|| p.user().map(|u| u.email.clone())),
        approval: b.approval.map(ApprovalIn::policy).transpose()?.flatten(),
    };
    let created = keys::create(s.store.as_ref(), &p, req, s.settings.max_active_keys).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn show_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<KeyId>,
) -> Result<Response, ApiError> {
    let mut view = keys::KeyView::from(&keys::show(s.store.as_ref(), &p, &id).await?);
    view.seen(s.usage.last(&view.id));
    Ok(Json(view).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchKey {
    /// The new name.
    #[serde(default)]
    name: Option<String>,
    /// The calls that wait for a person's approval; `null` removes the policy. A key may
    /// only tighten a policy (more kinds, a lower bulk limit).
    #[serde(default, deserialize_with = "given")]
    #[schemars(with = "Option<ApprovalIn>")]
    approval: Option<Option<ApprovalIn>>,
}

async fn patch_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<KeyId>,
    ApiJson(b): ApiJson<PatchKey>,
) -> Result<Response, ApiError> {
    if b.name.is_none() && b.approval.is_none() {
        return Err(ApiError::invalid("nothing to change: give `name` or `approval`"));
    }
    let store = s.store.as_ref();
    let mut view = match &b.name {
        Some(name) => keys::rename(store, &p, &id, name).await?,
        None => keys::KeyView::from(&keys::show(store, &p, &id).await?),
    };
    if let Some(approval) = b.approval {
        let policy = approval.map(ApprovalIn::policy).transpose()?.flatten();
        view = keys::set_approval(store, &p, &id, policy).await?;
    }
    view.seen(s.usage.last(&view.id));
    Ok(Json(view).into_response())
}

async fn disable_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<KeyId>,
) -> Result<Response, ApiError> {
    Ok(Json(keys::disable(s.store.as_ref(), &p, &id).await?).into_response())
}

async fn enable_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<KeyId>,
) -> Result<Response, ApiError> {
    let max = s.settings.max_active_keys;
    Ok(Json(keys::enable(s.store.as_ref(), &p, &id, max).await?).into_response())
}

async fn revoke_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<KeyId>,
) -> Result<Response, ApiError> {
    Ok(Json(keys::revoke(s.store.as_ref(), &p, &id).await?).into_response())
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Rotate {
    /// Hours the old secret keeps working (at most 720, 30 days); default none.
    #[serde(default)]
    grace_hours: Option<u32>,
}

async fn rotate_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<KeyId>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: no body rotates with no grace period.
    let b: Rotate = if body.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let grace = b.grace_hours;
    Ok(Json(keys::rotate(s.store.as_ref(), &p, &id, grace).await?).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Confirm {
    /// Delete even though the key was used in the last 24 hours.
    #[serde(default)]
    confirm: bool,
}

async fn delete_key(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<KeyId>,
    ApiQuery(q): ApiQuery<Confirm>,
) -> Result<Response, ApiError> {
    let recent = s.usage.last_use(&id.trimmed());
    // 204 like every other delete of the API; the audit log keeps what the key was.
    keys::delete(s.store.as_ref(), &p, &id, q.confirm, recent).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_users(State(s): State<AppState>, Extension(p): Caller) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "items": users::list(s.store.as_ref(), &p).await? })).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    #[schemars(email)]
    email: String,
    #[serde(default)]
    name: Option<String>,
    /// What the user's keys may do at most.
    #[schemars(with = "rapport_tools::Role")]
    role: String,
}

async fn create_user(
    State(s): State<AppState>,
    Extension(p): Caller,
    ApiJson(b): ApiJson<CreateUser>,
) -> Result<Response, ApiError> {
    let user = users::create(s.store.as_ref(), &p, &b.email, b.name.as_deref(), &b.role).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    /// The new role; the last owner keeps theirs.
    #[serde(default)]
    #[schemars(with = "Option<rapport_tools::Role>")]
    role: Option<String>,
    /// `false` deactivates the user, ending their sessions and refusing their keys.
    #[serde(default)]
    active: Option<bool>,
}

async fn update_user(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(email): Path<String>,
    ApiJson(b): ApiJson<UpdateUser>,
) -> Result<Response, ApiError> {
    if b.role.is_none() && b.active.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "give `role`, `active` or both",
        ));
    }
    // Both in one step: a refusal of either changes nothing.
    let user = users::update(s.store.as_ref(), &p, &email, b.role.as_deref(), b.active).await?;
    Ok(Json(user).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    /// Entries per page, 1 to 500; default 50.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Only entries of this action, e.g. `key.rotate`.
    #[serde(default)]
    action: Option<String>,
    /// Only entries about this key.
    #[serde(default)]
    key_id: Option<KeyId>,
}

async fn audit(
    State(s): State<AppState>,
    Extension(p): Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let filter = crate::store::AuditFilter { action: q.action, key_id: q.key_id };
    let page = keys::audit::list(s.store.as_ref(), &p, &filter, q.limit.unwrap_or(50), q.cursor.as_deref()).await?;
    Ok(Json(page).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalsQuery {
    /// Per page, 1 to 500; default 50.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Only those in this state: pending, approved, denied, stale, expired.
    #[serde(default)]
    state: Option<String>,
    /// Only those this key asked.
    #[serde(default)]
    key_id: Option<KeyId>,
}

/// A domain refusal on a route of its own (approvals): the same codes as the tools'.
fn domain(e: crate::crm::CrmError) -> ApiError {
    ApiError::from(crate::service::ToolError::from(e))
}

/// The calls held for a person (SPEC 12), newest first (`audit:read`). A key may read
/// them; only a person decides them.
async fn list_approvals(
    State(s): State<AppState>,
    Extension(p): Caller,
    ApiQuery(q): ApiQuery<ApprovalsQuery>,
) -> Result<Response, ApiError> {
    use crate::service::approvals;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(format!("`limit` is 1 to 500, got {limit}")));
    }
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(crate::crm::cursor::decode_at_id(c).ok_or_else(|| {
            ApiError::invalid("`cursor` is not one this server issued; pass `next_cursor` unchanged")
        })?),
    };
    let filter = crate::store::ApprovalFilter { state: q.state, key_id: q.key_id };
    let mut list = approvals::list(&s, &p, filter, before, limit + 1).await.map_err(domain)?;
    let next = (list.len() > limit as usize).then(|| {
        list.truncate(limit as usize);
        list.last().map(|a| crate::crm::cursor::encode_at_id(a.created_at, &a.id))
    });
    let items: Vec<_> = list.iter().map(approvals::view).collect();
    Ok(Json(serde_json::json!({ "items": items, "next_cursor": next.flatten() })).into_response())
}

async fn show_approval(
    State(s): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(crate::service::approvals::show(&s, &p, &id).await.map_err(domain)?).into_response())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Connect {
    /// `claude-code`, `codex`, `vscode`, `cursor`, `gemini`, `windsurf`, `claude-desktop`, `chatgpt`, or `all`.
    client: String,
    /// The server's name in the client; default `rapport`.
    #[serde(default)]
    name: Option<String>,
    /// `lean` (the default) or `full`: which catalog the client lists (SPEC 5).
    #[serde(default)]
    #[schemars(extend("enum" = ["lean", "full"]))]
    profile: Option<String>,
}

/// `lean` (the default) or `full`.
fn profile(given: Option<&str>) -> Result<rapport_tools::Profile, ApiError> {
    given.map_or(Ok(Default::default()), |p| {
        rapport_tools::Profile::parse(p)
            .ok_or_else(|| ApiError::invalid(format!("`profile` is lean or full, got {p:?}")))
    })
}

/// What to paste or click to use Rapport from a client, with the key of this very call.
async fn connect(
    State(s): State<AppState>,
    Extension(p): Caller,
    Extension(key): Extension<Arc<crate::auth::key::PlainKey>>,
    ApiJson(b): ApiJson<Connect>,
) -> Result<Response, ApiError> {
    use crate::keys::connect::{ConnectRequest, KeySource};
    let req = ConnectRequest {
        client: &b.client,
        name: b.name.as_deref(),
        public_url: &s.settings.public_url,
        query_keys: s.settings.query_keys,
        key: KeySource::Supplied(&key),
        user_email: None,
        profile: profile(b.profile.as_deref())?,
    };
    let mut list = keys::connect::connect(s.store.as_ref(), &p, req, s.settings.max_active_keys).await?;
    Ok(if list.len() == 1 { Json(list.remove(0)).into_response() } else { Json(list).into_response() })
}
