//! The web console (SPEC section 8): server-rendered pages for people. Sessions live in the
//! database, every state-changing form carries a CSRF token, every page sends the security
//! headers, and every asset is served from the binary.

mod activity;
mod approvals;
mod imports;
mod keys;
mod people;
mod records;
pub mod session;
mod undo;
mod webhooks;

use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rapport_tools::{Entity, Scope};

use crate::keys::KeyError;
use crate::state::AppState;
use crate::time::{self, Millis};
use session::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/setup", get(session::setup_page).post(session::setup))
        .route("/invite", get(session::invite_page).post(session::invite))
        .route("/settings/keys", get(keys::page).post(keys::create))
        .route("/settings/keys/new", get(keys::new_page))
        .route("/settings/keys/connect", post(keys::connect))
        .route("/settings/keys/{id}/rename", post(keys::rename))
        .route("/settings/keys/{id}/approval", post(keys::approval))
        .route("/settings/keys/{id}/status", post(keys::status))
        .route("/settings/keys/{id}/rotate", get(keys::confirm_page).post(keys::rotate))
        .route("/settings/keys/{id}/revoke", get(keys::confirm_page).post(keys::revoke))
        .route("/settings/keys/{id}/delete", get(keys::confirm_page).post(keys::delete))
        .route("/settings/users", get(people::page).post(people::invite))
        .route("/settings/users/{id}/role", post(people::set_role))
        .route("/settings/users/{id}/active", post(people::set_active))
        .route("/settings/webhooks", get(webhooks::page).post(webhooks::create))
        .route("/settings/webhooks/{id}", get(webhooks::show).post(webhooks::update))
        .route("/settings/webhooks/{id}/rotate", get(webhooks::confirm_page).post(webhooks::rotate))
        .route("/settings/webhooks/{id}/delete", get(webhooks::confirm_page).post(webhooks::delete))
        .route("/settings/webhooks/{id}/take-over", post(webhooks::take_over))
        .route("/settings/webhooks/deliveries/{delivery_id}/resend", post(webhooks::resend))
        .route("/settings/audit", get(activity::audit))
        .route("/activity", get(activity::activity))
        .route("/activity/undo", get(undo::page).post(undo::undo))
        .route("/approvals", get(approvals::page))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/deny", post(approvals::deny))
        .route(
            "/imports",
            get(imports::page)
                .post(imports::upload)
                .layer(axum::extract::DefaultBodyLimit::max(crate::http::data::MAX_IMPORT_BYTES as usize + (1 << 20))),
        )
        .route("/imports/preview", post(imports::preview))
        .route("/imports/start", post(imports::start))
        .route("/imports/{id}", get(imports::show))
        .route("/imports/{id}/failures.csv", get(imports::failures))
        .route("/settings/privacy", get(imports::privacy_page))
        .route("/settings/privacy/export", get(imports::privacy_export))
        .route("/settings/privacy/erase", post(imports::privacy_erase))
        .route("/records/{entity}/export", get(imports::export))
        .route("/records", get(records::index))
        .route("/records/{entity}", get(records::list))
        .route("/records/{entity}/{id}", get(records::show))
        .route("/assets/{name}", get(asset))
        .route("/favicon.ico", get(|| async { Redirect::permanent("/assets/favicon.svg") }))
        .layer(from_fn(security_headers))
}

/// What a page needs that is not its own: who is looking, the navigation they may use, the
/// token their forms carry, and a message left by the last action.
pub struct Chrome {
    pub title: String,
    pub user: String,
    pub org: String,
    pub role: String,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub flash: Option<Flash>,
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
    /// Shown beside the label when not zero (calls waiting for approval).
    pub count: u64,
}

pub struct Flash {
    /// `ok` or `error`: the class of the banner.
    pub kind: &'static str,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Option<Flash> {
        Some(Flash { kind: "ok", text: text.into() })
    }

    pub fn error(text: impl Into<String>) -> Option<Flash> {
        Some(Flash { kind: "error", text: text.into() })
    }
}

/// The pages of the navigation and the scope each takes; a page the role may not use is
/// neither linked nor served.
const NAV: &[(&str, &str, Option<Scope>)] = &[
    ("/activity", "Activity", None),
    ("/records", "Records", None),
    ("/approvals", "Approvals", None),
    ("/settings/keys", "API keys", Some(Scope::KeysManage)),
    ("/settings/users", "Users", Some(Scope::UsersManage)),
    ("/settings/webhooks", "Webhooks", Some(Scope::WebhooksManage)),
    ("/settings/audit", "Audit log", Some(Scope::AuditRead)),
    ("/settings/privacy", "Personal data", Some(Scope::OrgManage)),
];

impl Chrome {
    pub fn new(s: &Session, title: impl Into<String>, section: &str, flash: Option<Flash>) -> Chrome {
        let p = &s.principal;
        let nav = NAV
            .iter()
            .filter(|(_, _, scope)| scope.is_none_or(|sc| p.scopes.contains(&sc)))
            .map(|(href, label, _)| NavItem {
                href,
                label,
                current: *href == section,
                count: if *href == "/approvals" { s.waiting } else { 0 },
            })
            .collect();
        Chrome {
            title: title.into(),
            user: p.user().map(|u| u.email.clone()).unwrap_or_default(),
            org: p.org.name.clone(),
            role: p.user().map_or("", |u| u.role.as_str()).to_owned(),
            csrf: s.csrf.clone(),
            nav,
            flash,
        }
    }

    /// For pages before login: no navigation, the login form's own token.
    pub fn public(title: impl Into<String>, csrf: String, flash: Option<Flash>) -> Chrome {
        Chrome {
            title: title.into(),
            user: String::new(),
            org: String::new(),
            role: String::new(),
            csrf,
            nav: Vec::new(),
            flash,
        }
    }
}

/// A page refused or failed: a status and a sentence, rendered in the console's frame.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError { status, message: message.into() }
    }

    pub fn forbidden() -> Self {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Your role does not allow this page. Ask an owner or admin of your organization if you need it.",
        )
    }

    pub fn not_found() -> Self {
        PageError::new(
            StatusCode::NOT_FOUND,
            "There is nothing here. It may have been deleted, or the address is mistyped.",
        )
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    status: u16,
    heading: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let heading = match self.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Slow down",
            StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let page = ErrorPage {
            c: Chrome::public(heading, String::new(), None),
            status: self.status.as_u16(),
            heading,
            message: self.message,
        };
        (self.status, render(&page)).into_response()
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::Invalid(m) = &e {
            return PageError::new(StatusCode::BAD_REQUEST, m.clone());
        }
        if e.is_unavailable() {
            return PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database cannot be reached right now. Try again in a moment.",
            );
        }
        tracing::error!(error = %e, "console page failed");
        PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "An internal error occurred; it has been logged.")
    }
}

impl From<KeyError> for PageError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => PageError::from(s),
            e => {
                let status = match &e {
                    KeyError::NotFound(_) => StatusCode::NOT_FOUND,
                    KeyError::Forbidden(_) => StatusCode::FORBIDDEN,
                    _ => StatusCode::BAD_REQUEST,
                };
                PageError::new(status, e.to_string())
            }
        }
    }
}

impl From<crate::crm::CrmError> for PageError {
    fn from(e: crate::crm::CrmError) -> Self {
        use crate::crm::CrmError;
        match e {
            CrmError::Store(s) => PageError::from(s),
            CrmError::NotFound(_) | CrmError::Missing(_) => PageError::not_found(),
            CrmError::Forbidden(_) => PageError::forbidden(),
            other => PageError::new(StatusCode::BAD_REQUEST, other.to_string()),
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// A form's answer: back to `page` with what happened, or why it was refused.
pub fn outcome<T>(page: &str, result: Result<T, KeyError>, ok: impl FnOnce(&T) -> String) -> PageResult {
    match result {
        Ok(v) => Ok(back(page, Flash::ok(ok(&v)))),
        Err(KeyError::Store(e)) => Err(e.into()),
        Err(e) => Ok(back(page, Flash::error(e.to_string()))),
    }
}

/// A template as an HTML answer.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// After a form: back to a page, with a message shown once there.
pub fn back(to: &str, flash: Option<Flash>) -> Response {
    let mut res = Redirect::to(to).into_response();
    if let Some(f) = flash {
        let value =
            format!("{FLASH_COOKIE}={}:{}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60", f.kind, urlencode(&f.text));
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

const FLASH_COOKIE: &str = "rapport_flash";

/// The message the last action left, read once (the answer must clear it: see `cleared`).
pub fn take_flash(headers: &axum::http::HeaderMap) -> Option<Flash> {
    let raw = session::cookie(headers, FLASH_COOKIE)?;
    let (kind, text) = raw.split_once(':')?;
    let text: String = form_urlencoded::parse(format!("t={text}").as_bytes()).next()?.1.into_owned();
    let kind = if kind == "ok" { "ok" } else { "error" };
    Some(Flash { kind, text: text.chars().take(500).collect() })
}

/// Clears the flash cookie on a page that showed it.
pub fn cleared(mut res: Response, had_flash: bool) -> Response {
    if had_flash {
        res.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("rapport_flash=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        );
    }
    res
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `2026-11-30 18:49 UTC`.
pub fn when(ms: Millis) -> String {
    let t = time::rfc3339(ms);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

/// `5 minutes ago`, `in 3 days`.
pub fn ago(ms: Millis) -> String {
    let now = time::now_ms();
    let (d, future) = if ms > now { (ms - now, true) } else { (now - ms, false) };
    let secs = d / 1000;
    let (n, unit) = match secs {
        0..60 => return if future { "in under a minute".into() } else { "just now".into() },
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if future { format!("in {n} {unit}{plural}") } else { format!("{n} {unit}{plural} ago") }
}

async fn home(s: Session) -> Response {
    let _ = s;
    Redirect::to("/activity").into_response()
}

/// The headers of SPEC section 8 on every console answer; pages are never cached.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

const ASSETS: &[(&str, &str, &str)] = &[
    ("console.css", "text/css; charset=utf-8", include_str!("../../assets/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../../assets/console.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../../assets/favicon.svg")),
];

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ty, body)) => {
            ([(header::CONTENT_TYPE, *ty), (header::CACHE_CONTROL, "public, max-age=300")], *body).into_response()
        }
        None => PageError::not_found().into_response(),
    }
}

/// `contacts` as a heading reads: `Contacts`.
pub fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The entity named by a URL segment (`contacts`, or `contact`).
pub fn entity_of(segment: &str) -> Option<Entity> {
    Entity::ALL.iter().copied().find(|e| e.def().plural == segment || e.as_str() == segment)
}
