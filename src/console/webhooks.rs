//! Settings → Webhooks (`webhooks:manage`, SPEC section 10): the endpoints, a create form
//! whose answer shows the signing secret once, each endpoint's page with its edit form and
//! its deliveries (every attempt, "Older" by cursor, resend), rotate and delete behind
//! confirm pages. Every action goes through `webhooks::endpoints` exactly as the tools and
//! REST do, with the person as the audit actor.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rapport_tools::Scope;
use rapport_tools::webhooks::{
    CreateWebhookInput, ListWebhookDeliveriesInput, ResendWebhookDeliveryInput, UpdateWebhookInput, Webhook,
    WebhookAttempt, WebhookDelivery, WebhookIdInput,
};
use serde::Deserialize;

use super::session::{Posted, Session};
use super::{Chrome, Flash, PageError, PageResult, ago, back, cleared, entity_of, render, take_flash, urlencode, when};
use crate::crm::CrmError;
use crate::state::AppState;
use crate::time::{self, Millis};
use crate::webhooks::endpoints;

const PAGE: &str = "/settings/webhooks";

fn page_of(id: &str) -> String {
    format!("{PAGE}/{}", urlencode(id))
}

/// An instant the tools answer as RFC 3339, as the console shows it.
fn shown(rfc3339: &str) -> String {
    time::parse_instant(rfc3339).map(when).unwrap_or_else(|| rfc3339.to_owned())
}

fn instant(rfc3339: &str) -> Millis {
    time::parse_instant(rfc3339).unwrap_or_default()
}

/// `2026-11-30 18:49:07 UTC`: attempts come seconds apart.
fn to_the_second(rfc3339: &str) -> String {
    match time::parse_instant(rfc3339) {
        Some(ms) => {
            let t = time::rfc3339(ms);
            format!("{} {} UTC", &t[..10], &t[11..19])
        }
        None => rfc3339.to_owned(),
    }
}

pub struct EndpointRow {
    pub id: String,
    pub href: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: String,
    pub failing_since: Option<String>,
    pub failing_since_ago: String,
    pub previous_secret_until: Option<String>,
    pub created: String,
    pub updated: String,
    /// Whose powers it carries: it delivers what they may read.
    pub created_by: String,
}

impl EndpointRow {
    fn new(w: &Webhook) -> EndpointRow {
        EndpointRow {
            id: w.id.clone(),
            href: page_of(&w.id),
            url: w.url.clone(),
            events: w.events.clone(),
            description: w.description.clone().unwrap_or_default(),
            enabled: w.enabled,
            disabled_reason: w.disabled_reason.clone().unwrap_or_default(),
            failing_since: w.failing_since.as_deref().map(shown),
            failing_since_ago: w.failing_since.as_deref().map(|f| ago(instant(f))).unwrap_or_default(),
            previous_secret_until: w.previous_secret_expires_at.as_deref().map(shown),
            created: shown(&w.created_at),
            updated: shown(&w.updated_at),
            created_by: w.created_by.clone().unwrap_or_default(),
        }
    }

    /// What the endpoint is called: its description, or its URL's host.
    pub fn title(&self) -> String {
        if !self.description.is_empty() {
            return self.description.clone();
        }
        match url::Url::parse(&self.url) {
            Ok(u) => match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => self.url.clone(),
            },
            Err(_) => self.url.clone(),
        }
    }
}

pub struct AttemptRow {
    pub at: String,
    pub at_ago: String,
    /// `HTTP 204`, or what went wrong before an answer.
    pub outcome: String,
    pub ok: bool,
    pub duration_ms: i64,
    pub response: String,
}

impl AttemptRow {
    fn new(a: &WebhookAttempt) -> AttemptRow {
        let outcome = match (a.status, &a.error) {
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "No answer".into(),
        };
        AttemptRow {
            at: to_the_second(&a.at),
            at_ago: ago(instant(&a.at)),
            outcome,
            ok: a.status.is_some_and(|s| (200..300).contains(&s)),
            duration_ms: a.duration_ms,
            response: a.response.clone().unwrap_or_default(),
        }
    }
}

pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub entity: String,
    pub record_id: String,
    pub record_href: Option<String>,
    pub state: String,
    /// The badge's class for the state.
    pub state_class: &'static str,
    pub created: String,
    pub created_ago: String,
    pub next_attempt: Option<String>,
    pub next_attempt_ago: String,
    pub attempts: Vec<AttemptRow>,
}

impl DeliveryRow {
    fn new(d: &WebhookDelivery) -> DeliveryRow {
        DeliveryRow {
            id: d.id.clone(),
            event_type: d.event_type.clone(),
            entity: d.entity.clone(),
            record_id: d.record_id.clone(),
            record_href: entity_of(&d.entity)
                .map(|e| format!("/records/{}/{}", e.def().plural, urlencode(&d.record_id))),
            state_class: match d.state.as_str() {
                "delivered" => "ok",
                "pending" => "warn",
                _ => "off",
            },
            state: d.state.clone(),
            created: to_the_second(&d.created_at),
            created_ago: ago(instant(&d.created_at)),
            next_attempt: d.next_attempt_at.as_deref().map(to_the_second),
            next_attempt_ago: d.next_attempt_at.as_deref().map(|n| ago(instant(n))).unwrap_or_default(),
            attempts: d.attempts.iter().map(AttemptRow::new).collect(),
        }
    }
}

/// A signing secret shown this once.
pub struct Revealed {
    pub heading: String,
    pub note: String,
    pub secret: String,
}

/// What the create and edit forms hold: as typed, so a refused form comes back as it was.
#[derive(Clone)]
pub struct Values {
    pub url: String,
    pub events: String,
    pub description: String,
    pub enabled: bool,
    /// Which field a refusal names (`url`, `events`, `description`), to mark it invalid.
    pub invalid: &'static str,
    pub error: String,
}

impl Default for Values {
    fn default() -> Values {
        Values {
            url: String::new(),
            events: "*".into(),
            description: String::new(),
            enabled: true,
            invalid: "",
            error: String::new(),
        }
    }
}

impl Values {
    fn of(w: &Webhook) -> Values {
        Values {
            url: w.url.clone(),
            events: w.events.join(", "),
            description: w.description.clone().unwrap_or_default(),
            enabled: w.enabled,
            ..Values::default()
        }
    }

    fn from_form(f: EndpointForm) -> Values {
        Values {
            url: f.url.trim().to_owned(),
            events: f.events,
            description: f.description,
            enabled: f.enabled.as_deref() == Some("true"),
            ..Values::default()
        }
    }

    /// The patterns, separated by commas, spaces or new lines.
    fn patterns(&self) -> Vec<String> {
        self.events
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The form again, with why it was refused.
    fn refused(mut self, e: &CrmError) -> Values {
        let message = e.to_string();
        self.invalid =
            ["url", "events", "description"].into_iter().find(|f| message.starts_with(&format!("`{f}`"))).unwrap_or("");
        self.error = message;
        self
    }
}

#[derive(Deserialize)]
pub struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    events: String,
    #[serde(default)]
    description: String,
    /// A checkbox: present when on.
    #[serde(default)]
    enabled: Option<String>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    c: Chrome,
    endpoints: Vec<EndpointRow>,
    max: usize,
    revealed: Option<Revealed>,
    form: Values,
    allow_private: bool,
}

async fn list_page(
    state: &AppState,
    s: &Session,
    flash: Option<Flash>,
    revealed: Option<Revealed>,
    form: Values,
) -> Result<ListPage, PageError> {
    s.require(Scope::WebhooksManage)?;
    let list = endpoints::list(&state.store, &s.principal).await?;
    Ok(ListPage {
        c: Chrome::new(s, "Webhooks", PAGE, flash),
        endpoints: list.items.iter().map(EndpointRow::new).collect(),
        max: endpoints::MAX_ENDPOINTS,
        revealed,
        form,
        allow_private: state.settings.webhook_allow_private,
    })
}

pub async fn page(State(state): State<AppState>, s: Session, headers: HeaderMap) -> PageResult {
    let flash = take_flash(&headers);
    let had = flash.is_some();
    let page = list_page(&state, &s, flash, None, Values::default()).await?;
    Ok(cleared(render(&page), had))
}

/// A refusal the person can fix shows the form again; anything else is the error page.
fn fixable(e: &CrmError) -> Option<StatusCode> {
    match e {
        CrmError::Invalid(_) => Some(StatusCode::BAD_REQUEST),
        CrmError::Conflict(_) => Some(StatusCode::CONFLICT),
        CrmError::Denied(_) => Some(StatusCode::FORBIDDEN),
        _ => None,
    }
}

const SHOWN_ONCE: &str = "Copy the secret now: it is shown only this once and you will not see it again. \
                          Rapport keeps it only to sign deliveries.";

pub async fn create(
    State(state): State<AppState>,
    Posted { session: s, form: f, .. }: Posted<EndpointForm>,
) -> PageResult {
    s.require(Scope::WebhooksManage)?;
    let values = Values::from_form(f);
    let input = CreateWebhookInput {
        url: values.url.clone(),
        events: values.patterns(),
        description: Some(values.description.clone()),
        enabled: Some(values.enabled),
    };
    match endpoints::create(&state.store, &s.principal, input, state.settings.webhook_allow_private).await {
        Ok(w) => {
            let revealed = Revealed {
                heading: "Webhook created".into(),
                note: SHOWN_ONCE.into(),
                secret: w.secret.clone().unwrap_or_default(),
            };
            let page = list_page(&state, &s, None, Some(revealed), Values::default()).await?;
            Ok((StatusCode::CREATED, render(&page)).into_response())
        }
        Err(e) => match fixable(&e) {
            Some(status) => {
                let page = list_page(&state, &s, None, None, values.refused(&e)).await?;
                Ok((status, render(&page)).into_response())
            }
            None => Err(e.into()),
        },
    }
}

#[derive(Template)]
#[template(path = "webhooks_endpoint.html")]
struct EndpointPage {
    c: Chrome,
    e: EndpointRow,
    form: Values,
    revealed: Option<Revealed>,
    deliveries: Vec<DeliveryRow>,
    /// Whether this is an older page (a cursor was given).
    older: bool,
    next: Option<String>,
    allow_private: bool,
}

/// The endpoint `id` of the person's organization.
async fn find(state: &AppState, s: &Session, id: &str) -> Result<Webhook, PageError> {
    s.require(Scope::WebhooksManage)?;
    let list = endpoints::list(&state.store, &s.principal).await?;
    list.items.into_iter().find(|w| w.id == id).ok_or_else(PageError::not_found)
}

async fn endpoint_page(
    state: &AppState,
    s: &Session,
    w: &Webhook,
    cursor: Option<String>,
    flash: Option<Flash>,
    revealed: Option<Revealed>,
    form: Option<Values>,
) -> Result<EndpointPage, PageError> {
    let older = cursor.is_some();
    let input = ListWebhookDeliveriesInput { id: w.id.clone(), limit: None, cursor };
    let page = endpoints::deliveries(&state.store, &s.principal, input).await?;
    let title = format!("Webhook {}", w.url);
    Ok(EndpointPage {
        c: Chrome::new(s, title, PAGE, flash),
        e: EndpointRow::new(w),
        form: form.unwrap_or_else(|| Values::of(w)),
        revealed,
        deliveries: page.items.iter().map(DeliveryRow::new).collect(),
        older,
        next: page.next_cursor.map(|c| format!("{}?cursor={}", page_of(&w.id), urlencode(&c))),
        allow_private: state.settings.webhook_allow_private,
    })
}

#[derive(Deserialize)]
pub struct CursorQuery {
    #[serde(default)]
    cursor: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<CursorQuery>,
    headers: HeaderMap,
) -> PageResult {
    let w = find(&state, &s, &id).await?;
    let flash = take_flash(&headers);
    let had = flash.is_some();
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let page = endpoint_page(&state, &s, &w, cursor, flash, None, None).await?;
    Ok(cleared(render(&page), had))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session: s, form: f, .. }: Posted<EndpointForm>,
) -> PageResult {
    let w = find(&state, &s, &id).await?;
    let values = Values::from_form(f);
    let input = UpdateWebhookInput {
        id: w.id.clone(),
        // An unchanged URL is not checked again: saving a description must not depend on
        // what the name resolves to today.
        url: Some(values.url.clone()).filter(|u| *u != w.url),
        events: Some(values.patterns()),
        description: Some(values.description.clone()),
        enabled: Some(values.enabled),
        ..Default::default()
    };
    match endpoints::update(&state.store, &s.principal, input, state.settings.webhook_allow_private).await {
        Ok(w) => {
            let state_note = if w.enabled { "enabled" } else { "disabled: nothing is sent until you enable it" };
            Ok(back(&page_of(&w.id), Flash::ok(format!("Saved the webhook to {}; it is {state_note}.", w.url))))
        }
        Err(e) => match fixable(&e) {
            Some(status) => {
                let page = endpoint_page(&state, &s, &w, None, None, None, Some(values.refused(&e))).await?;
                Ok((status, render(&page)).into_response())
            }
            None => Err(e.into()),
        },
    }
}

#[derive(Template)]
#[template(path = "webhooks_confirm.html")]
struct ConfirmPage {
    c: Chrome,
    action: &'static str,
    e: EndpointRow,
}

fn action_of(uri: &axum::http::Uri) -> &'static str {
    if uri.path().ends_with("/rotate") { "rotate" } else { "delete" }
}

pub async fn confirm_page(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> PageResult {
    let w = find(&state, &s, &id).await?;
    let action = action_of(&uri);
    let title = if action == "rotate" { "Rotate the signing secret" } else { "Delete the webhook" };
    let page = ConfirmPage { c: Chrome::new(&s, title, PAGE, None), action, e: EndpointRow::new(&w) };
    Ok(render(&page))
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> PageResult {
    let w = find(&state, &s, &id).await?;
    let input = UpdateWebhookInput { id: w.id.clone(), rotate_secret: Some(true), ..Default::default() };
    match endpoints::update(&state.store, &s.principal, input, state.settings.webhook_allow_private).await {
        Ok(w) => {
            let until =
                w.previous_secret_expires_at.as_deref().map(shown).unwrap_or_else(|| "24 hours from now".into());
            let revealed = Revealed {
                heading: "Signing secret rotated".into(),
                note: format!(
                    "The old secret keeps working for 24 hours (until {until}): meanwhile every delivery carries a \
                     signature for each, so receivers can switch without missing one. Copy the new secret now: \
                     it is shown only this once and you will not see it again."
                ),
                secret: w.secret.clone().unwrap_or_default(),
            };
            let page = endpoint_page(&state, &s, &w, None, None, Some(revealed), None).await?;
            Ok(render(&page))
        }
        Err(e) => Err(e.into()),
    }
}

/// Takes the endpoint over: it carries the person's powers from now on, and is turned on
/// again when it was off (SPEC 10: an owner can take over a deactivated person's webhook).
pub async fn take_over(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> PageResult {
    let w = find(&state, &s, &id).await?;
    let input =
        UpdateWebhookInput { id: w.id.clone(), enabled: Some(true), take_over: Some(true), ..Default::default() };
    match endpoints::update(&state.store, &s.principal, input, state.settings.webhook_allow_private).await {
        Ok(w) => Ok(back(
            &page_of(&w.id),
            Flash::ok("It is yours now: it delivers what you may read, and it is enabled.".to_owned()),
        )),
        Err(e @ (CrmError::Conflict(_) | CrmError::Denied(_))) => {
            Ok(back(&page_of(&w.id), Flash::error(e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> PageResult {
    let w = find(&state, &s, &id).await?;
    endpoints::delete(&state.store, &s.principal, WebhookIdInput { id: w.id.clone() }).await?;
    Ok(back(PAGE, Flash::ok(format!("Deleted the webhook to {}, with its deliveries.", w.url))))
}

#[derive(Deserialize)]
pub struct ResendForm {
    /// The endpoint whose page the button is on, to go back to.
    #[serde(default)]
    endpoint: String,
}

pub async fn resend(
    State(state): State<AppState>,
    Path(delivery_id): Path<String>,
    Posted { session: s, form: f, .. }: Posted<ResendForm>,
) -> PageResult {
    s.require(Scope::WebhooksManage)?;
    let plain = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let to = if plain(&f.endpoint) { page_of(&f.endpoint) } else { PAGE.to_owned() };
    let input = ResendWebhookDeliveryInput { delivery_id };
    match endpoints::resend(&state.store, &s.principal, input).await {
        Ok(d) => Ok(back(
            &to,
            Flash::ok(format!("Sending {} ({}) again now; the new attempt shows below.", d.id, d.event_type)),
        )),
        // The domain's words are for tools; a person switches it on with the form above. A
        // delivery in flight is the other conflict, and its message reads well as it is.
        Err(CrmError::Conflict(m)) if m.contains("turned off") => {
            Ok(back(&to, Flash::error("This webhook is disabled: enable it (Enabled, then Save), then resend.")))
        }
        Err(CrmError::Conflict(m)) => Ok(back(&to, Flash::error(m))),
        Err(CrmError::Invalid(_)) => Err(PageError::not_found()),
        Err(e) => Err(e.into()),
    }
}
