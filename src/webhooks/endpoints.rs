//! Managing endpoints (scope `webhooks:manage`): create, change, rotate the secret, delete,
//! list them and their deliveries, resend one. Every change is audited; a secret is answered
//! only when it was just made.

use rapport_tools::webhooks::*;
use rapport_tools::{Entity, Scope, Scopes};
use serde_json::{Value, json};

use super::sign::Secret;
use super::{events, guard};
use crate::crm::{CrmError, DEFAULT_PAGE, MAX_PAGE, Principal};
use crate::store::{AuditEntry, DeliveryView, Endpoint, EndpointId, KeyId, Store, StoreError, Target, User, UserId};
use crate::time::{self, Millis, rfc3339};

/// How long the secret before a rotation keeps signing.
pub const ROTATION_OVERLAP_MS: Millis = 24 * 3_600_000;
/// Endpoints one organization may have: each write fans out to every one.
pub const MAX_ENDPOINTS: usize = 50;
const MAX_PATTERNS: usize = 50;
const MAX_DESCRIPTION: usize = 500;
const MAX_URL: usize = 2_000;

/// An endpoint as tools answer it; `secret` only when just made, `created_by` the email of
/// the person whose powers it carries.
pub fn view(e: &Endpoint, secret: Option<&Secret>, now: Millis, created_by: Option<&User>) -> Webhook {
    Webhook {
        created_by: created_by.map(|u| u.email.clone()),
        id: e.id.to_string(),
        url: e.url.clone(),
        events: e.events.clone(),
        description: e.description.clone(),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason.clone(),
        failing_since: e.failing_since.map(rfc3339),
        previous_secret_expires_at: e.old_secret_until.filter(|u| *u > now).map(rfc3339),
        secret: secret.map(|s| s.expose().to_owned()),
        created_at: rfc3339(e.created_at),
        updated_at: rfc3339(e.updated_at),
    }
}

/// A URL an endpoint may use: well formed, https (unless private targets are allowed), and
/// not naming or resolving to a refused address.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<String, CrmError> {
    if raw.len() > MAX_URL {
        return Err(CrmError::invalid(format!("`url` is at most {MAX_URL} characters")));
    }
    let url = guard::check_url(raw, allow_private).map_err(|m| CrmError::invalid(format!("`url`: {m}")))?;
    if !allow_private && let Some(url::Host::Domain(host)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::lookup_host((host, port)));
        let addrs: Vec<_> = lookup
            .await
            .map_err(|_| CrmError::invalid(format!("`url`: {host} did not resolve within 5 s; try again")))?
            .map_err(|e| CrmError::invalid(format!("`url`: {host} does not resolve ({e}); use a public name")))?
            .collect();
        if let Some((ip, why)) = addrs.iter().find_map(|a| guard::refused(a.ip()).map(|w| (a.ip(), w))) {
            return Err(CrmError::invalid(format!(
                "`url`: {host} resolves to {ip}, {why}; webhooks go to public addresses"
            )));
        }
    }
    Ok(url.to_string())
}

/// The patterns, checked, trimmed and without repeats, in the order given.
fn patterns(list: Vec<String>) -> Result<Vec<String>, CrmError> {
    if list.is_empty() {
        return Err(CrmError::invalid("`events` needs at least one pattern, e.g. [\"*\"] or [\"deal.*\"]"));
    }
    if list.len() > MAX_PATTERNS {
        return Err(CrmError::invalid(format!("`events` takes at most {MAX_PATTERNS} patterns")));
    }
    let mut out: Vec<String> = Vec::new();
    for p in list {
        let p = events::parse_pattern(&p).map_err(|m| CrmError::invalid(format!("`events`: {m}")))?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn description(d: Option<String>) -> Result<Option<String>, CrmError> {
    let d = d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if d.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(CrmError::invalid(format!("`description` is at most {MAX_DESCRIPTION} characters")));
    }
    Ok(d)
}

/// A URL as the audit log keeps it: scheme, host and port, the path left out (a Slack or
/// Discord hook's path is a secret of its own, and `audit:read` is not `webhooks:manage`).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let rest = if u.path() == "/" && u.query().is_none() { "/" } else { "/…" };
            format!("{}://{}{rest}", u.scheme(), u.host_str().unwrap_or(""))
                + &u.port().map(|p| format!(" (port {p})")).unwrap_or_default()
        }
        Err(_) => "(unreadable)".into(),
    }
}

fn missing(id: &EndpointId) -> CrmError {
    CrmError::Missing(format!("no webhook {id} in this organization; list_webhooks shows the ids"))
}

fn audit(p: &Principal, action: &str, id: &EndpointId, details: Value) -> AuditEntry {
    AuditEntry::new(p.org_id(), &p.actor(), p.ip.as_deref(), action, Target::Webhook(id), details)
}

/// The creator's part of an endpoint: the person, the key they act through, and that key's
/// scopes (a person in the console follows their role).
fn creator(p: &Principal) -> (Option<UserId>, Option<KeyId>, Option<Scopes>) {
    let key = p.key_id().cloned();
    let scopes = key.as_ref().map(|_| p.scopes);
    (p.user().map(|u| u.id.clone()), key, scopes)
}

/// The endpoint's creator, when they are still a user of the organization.
async fn creator_of(store: &Store, p: &Principal, e: &Endpoint) -> Result<Option<User>, CrmError> {
    Ok(match &e.created_by {
        Some(id) => store.user_by_id(p.org_id(), id).await?,
        None => None,
    })
}

/// The data an endpoint delivers: the record entities its creator may read now, and
/// approvals with `audit:read`.
fn reads(powers: Scopes) -> Scopes {
    Entity::ALL
        .iter()
        .map(|e| e.def().read)
        .chain([rapport_tools::Scope::AuditRead])
        .filter(|s| powers.contains(s))
        .collect()
}

/// SPEC 3, Authority: pointing an endpoint elsewhere, changing what it sends, turning it on
/// or rotating its secret all act with the powers it carries, so they take holding those
/// powers. Turning it off and deleting it stay open to `webhooks:manage`.
fn may_steer(p: &Principal, e: &Endpoint, creator: Option<&User>) -> Result<(), CrmError> {
    let carried = reads(e.powers(creator.filter(|u| u.active).map(|u| u.role)));
    match carried.first_beyond(&p.scopes) {
        None => Ok(()),
        Some(beyond) => Err(CrmError::Denied(format!(
            "webhook {} carries the powers of {}, who may read what `{beyond}` allows and you may not; you may turn it off or delete it, or take it over (take_over: true) so that it carries your powers instead",
            e.id,
            creator.map_or("its creator", |u| u.email.as_str())
        ))),
    }
}

pub async fn create(
    store: &Store,
    p: &Principal,
    input: CreateWebhookInput,
    allow_private: bool,
) -> Result<Webhook, CrmError> {
    p.require(Scope::WebhooksManage)?;
    // An endpoint carries its creator's powers: a person's, or a key's owner's.
    p.acting_user()?;
    let events = patterns(input.events)?;
    let description = description(input.description)?;
    let url = check_url(&input.url, allow_private).await?;
    let now = time::now_ms();
    let secret = Secret::generate();
    let (created_by, created_by_key, scopes) = creator(p);
    let e = Endpoint {
        created_by,
        created_by_key,
        scopes,
        id: format!("wh_{}", uuid::Uuid::now_v7().simple()).into(),
        org_id: p.org_id().clone(),
        url,
        events,
        description,
        enabled: input.enabled.unwrap_or(true),
        secret: secret.clone(),
        old_secret: None,
        old_secret_until: None,
        created_at: now,
        updated_at: now,
        failing_since: None,
        disabled_reason: None,
    };
    let mut tx = store.begin().await?;
    // Counted inside the transaction: two creates at once cannot both pass the limit.
    if tx.count_endpoints(p.org_id()).await? >= MAX_ENDPOINTS as i64 {
        return Err(CrmError::Conflict(format!(
            "this organization has {MAX_ENDPOINTS} webhooks, the most it may have; delete one first"
        )));
    }
    tx.insert_endpoint(&e).await?;
    let details = json!({ "url": redacted(&e.url), "events": e.events, "enabled": e.enabled });
    tx.insert_audit(&audit(p, "webhook.create", &e.id, details)).await?;
    tx.commit().await?;
    Ok(view(&e, Some(&secret), now, p.user()))
}

pub async fn update(
    store: &Store,
    p: &Principal,
    input: UpdateWebhookInput,
    allow_private: bool,
) -> Result<Webhook, CrmError> {
    p.require(Scope::WebhooksManage)?;
    let events = input.events.map(patterns).transpose()?;
    let desc = input.description.map(|d| description(Some(d))).transpose()?;
    let url = match &input.url {
        Some(u) => Some(check_url(u, allow_private).await?),
        None => None,
    };
    let now = time::now_ms();
    let id = EndpointId::from(input.id.as_str());
    let mut tx = store.begin().await?;
    let mut e = tx.endpoint_for_update(p.org_id(), &id).await?.ok_or_else(|| missing(&id))?;
    let mut owner = creator_of(store, p, &e).await?;
    let mut changes = serde_json::Map::new();
    let take_over = input.take_over.unwrap_or(false);
    if take_over && (owner.as_ref().map(|u| &u.id) != p.user().map(|u| &u.id) || e.scopes != creator(p).2) {
        // It carries the actor's powers from now on: never more than they hold.
        let before = owner.as_ref().map(|u| u.email.clone());
        (e.created_by, e.created_by_key, e.scopes) = creator(p);
        changes.insert("created_by".into(), json!({ "before": before, "after": p.user().map(|u| &u.email) }));
        owner = p.user().cloned();
    }
    // Only what would change counts: a form that sends every field back unchanged steers nothing.
    let steers = url.as_ref().is_some_and(|u| *u != e.url)
        || events.as_ref().is_some_and(|ev| *ev != e.events)
        || (input.enabled == Some(true) && !e.enabled)
        || input.rotate_secret == Some(true);
    if steers {
        // An endpoint whose creator is gone carries nothing to check against: whoever steers
        // it takes it over, so that it never turns back on with someone else's powers.
        if !owner.as_ref().is_some_and(|u| u.active) {
            return Err(CrmError::Conflict(format!(
                "webhook {} was made by {}, who is deactivated; take it over (take_over: true) to change or turn it on with your powers",
                e.id,
                owner.as_ref().map_or("someone no longer here", |u| u.email.as_str())
            )));
        }
        may_steer(p, &e, owner.as_ref())?;
    }
    let note = |changes: &mut serde_json::Map<String, Value>, field: &str, before: Value, after: Value| {
        if before != after {
            changes.insert(field.to_owned(), json!({ "before": before, "after": after }));
        }
    };
    if let Some(url) = url {
        if url != e.url {
            changes.insert("url".into(), json!({ "before": redacted(&e.url), "after": redacted(&url) }));
        }
        e.url = url;
    }
    if let Some(events) = events {
        note(&mut changes, "events", json!(e.events), json!(events));
        e.events = events;
    }
    if let Some(d) = desc {
        note(&mut changes, "description", json!(e.description), json!(d));
        e.description = d;
    }
    if let Some(on) = input.enabled {
        note(&mut changes, "enabled", json!(e.enabled), json!(on));
        if on && !e.enabled {
            // Turned back on by a person: its failure run starts afresh.
            e.disabled_reason = None;
            e.failing_since = None;
        }
        e.enabled = on;
    }
    if e.old_secret_until.is_some_and(|u| u <= now) {
        // The overlap is over: the old secret signs nothing any more.
        e.old_secret = None;
        e.old_secret_until = None;
    }
    let rotate = input.rotate_secret.unwrap_or(false);
    if let Some(until) = e.old_secret_until.filter(|_| rotate) {
        // A second rotation would drop the secret receivers may still be on.
        return Err(CrmError::Conflict(format!(
            "webhook {} was rotated less than 24 hours ago and its previous secret still signs until {}; rotate again after that, or delete the webhook and create a new one",
            e.id,
            rfc3339(until)
        )));
    }
    let rotated = rotate.then(Secret::generate);
    if let Some(s) = &rotated {
        e.old_secret = Some(std::mem::replace(&mut e.secret, s.clone()));
        e.old_secret_until = Some(now + ROTATION_OVERLAP_MS);
        changes.insert(
            "secret".into(),
            json!({ "rotated": true, "previous_valid_until": rfc3339(now + ROTATION_OVERLAP_MS) }),
        );
    }
    if !changes.is_empty() {
        e.updated_at = now;
        tx.save_endpoint(&e).await?;
        tx.insert_audit(&audit(p, "webhook.update", &e.id, json!({ "changes": changes }))).await?;
    }
    tx.commit().await?;
    Ok(view(&e, rotated.as_ref(), now, owner.as_ref()))
}

pub async fn delete(store: &Store, p: &Principal, input: WebhookIdInput) -> Result<DeletedWebhook, CrmError> {
    p.require(Scope::WebhooksManage)?;
    let id = EndpointId::from(input.id);
    let mut tx = store.begin().await?;
    let e = tx.endpoint_for_update(p.org_id(), &id).await?.ok_or_else(|| missing(&id))?;
    tx.delete_endpoint(p.org_id(), &e.id).await?;
    tx.insert_audit(&audit(p, "webhook.delete", &e.id, json!({ "url": redacted(&e.url), "events": e.events }))).await?;
    tx.commit().await?;
    Ok(DeletedWebhook { deleted: e.id.into_string() })
}

pub async fn list(store: &Store, p: &Principal) -> Result<WebhookList, CrmError> {
    p.require(Scope::WebhooksManage)?;
    let now = time::now_ms();
    let users = store.list_users(p.org_id()).await?;
    let by_id = |id: &Option<UserId>| users.iter().find(|u| Some(&u.id) == id.as_ref());
    let items = store.endpoints(p.org_id()).await?.iter().map(|e| view(e, None, now, by_id(&e.created_by))).collect();
    Ok(WebhookList { items })
}

fn delivery_view(d: DeliveryView) -> WebhookDelivery {
    let x = d.delivery;
    WebhookDelivery {
        next_attempt_at: (x.state == "pending").then(|| rfc3339(x.next_attempt_at)),
        id: x.id,
        event_type: x.event_type,
        entity: x.entity,
        record_id: x.record_id,
        state: x.state,
        created_at: rfc3339(x.created_at),
        attempts: d
            .attempts
            .into_iter()
            .map(|a| WebhookAttempt {
                at: rfc3339(a.at),
                status: a.status,
                duration_ms: a.duration_ms,
                error: a.error,
                response: a.response,
            })
            .collect(),
    }
}

/// Whether `s` looks like a delivery id (`msg_` and 32 hex digits), so that a bad cursor
/// or id is refused by name instead of matching nothing.
fn delivery_id(s: &str, what: &str) -> Result<(), CrmError> {
    let hex = s.strip_prefix("msg_").unwrap_or("");
    if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(CrmError::invalid(format!("`{what}` is not a delivery id (msg_…): {s:?}")))
    }
}

pub async fn deliveries(
    store: &Store,
    p: &Principal,
    input: ListWebhookDeliveriesInput,
) -> Result<WebhookDeliveries, CrmError> {
    p.require(Scope::WebhooksManage)?;
    let limit = input.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(CrmError::invalid(format!("`limit` is 1 to {MAX_PAGE}, got {limit}")));
    }
    if let Some(c) = &input.cursor {
        delivery_id(c, "cursor")?;
    }
    let id = EndpointId::from(input.id.as_str());
    store.endpoint(p.org_id(), &id).await?.ok_or_else(|| missing(&id))?;
    // Which records changed, and what receivers answered, only of what the caller may read.
    let mut visible = p.visible_changes();
    if p.scopes.contains(&rapport_tools::Scope::AuditRead) {
        visible.push("approval");
    }
    let mut page = store.deliveries(p.org_id(), &id, &visible, input.cursor.as_deref(), limit + 1).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor = if more { page.last().map(|d| d.delivery.id.clone()) } else { None };
    Ok(WebhookDeliveries { items: page.into_iter().map(delivery_view).collect(), next_cursor })
}

pub async fn resend(
    store: &Store,
    p: &Principal,
    input: ResendWebhookDeliveryInput,
) -> Result<WebhookDelivery, CrmError> {
    p.require(Scope::WebhooksManage)?;
    let id = input.delivery_id;
    delivery_id(&id, "delivery_id")?;
    let gone =
        || CrmError::Missing(format!("no delivery {id} in this organization; list_webhook_deliveries shows them"));
    let endpoint_id = store.delivery_endpoint(p.org_id(), &id).await?.ok_or_else(gone)?;
    let e = store.endpoint(p.org_id(), &endpoint_id).await?.ok_or_else(gone)?;
    if !e.enabled {
        return Err(CrmError::Conflict(format!(
            "webhook {} is turned off; update_webhook with enabled: true first, then resend",
            e.id
        )));
    }
    let now = time::now_ms();
    let d = match store
        .resend_delivery(p.org_id(), &id, now, &audit(p, "webhook.resend", &e.id, json!({ "delivery_id": id })))
        .await
    {
        Err(StoreError::Conflict(_)) => {
            return Err(CrmError::Conflict(format!(
                "delivery {id} is being sent right now; resend it once this attempt ends (within 10 s)"
            )));
        }
        other => other?.ok_or_else(gone)?,
    };
    Ok(delivery_view(DeliveryView { delivery: d, attempts: Vec::new() }))
}
