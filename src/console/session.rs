//! Who is looking at a console page: the session cookie, the CSRF token of its forms,
//! login, logout, and the one-time links where people choose a password.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{Chrome, Flash, PageError, PageResult, render};
use crate::auth::session::{self as auth_session, IDLE_TIMEOUT_MS, LoginError, Password, Secret, TOUCH_EVERY_MS};
use crate::crm::Principal;
use crate::keys::access;
use crate::state::AppState;
use crate::store::{LinkPurpose, Org, User};
use crate::time;

pub const SESSION_COOKIE: &str = "rapport_session";
/// A form posted from a page of a logged-in person: the session it came with, its fields,
/// and its CSRF token already checked, so no handler can forget to. `pairs` keeps every
/// field in order (repeated ones too, such as a key's scopes).
pub struct Posted<T = NoFields> {
    pub session: Session,
    pub form: T,
    pub pairs: Vec<(String, String)>,
}

/// A form whose only field is its token.
#[derive(Deserialize)]
pub struct NoFields {}

/// Largest console form body.
const MAX_FORM: usize = 64 * 1024;

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let refuse = |status: StatusCode, msg: String| PageError::new(status, msg).into_response();
        let bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("A form is at most {MAX_FORM} bytes.")))?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let token = pairs.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
        session.check(token).map_err(IntoResponse::into_response)?;
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let PageForm(form) = PageForm::<T>::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        Ok(Posted { session, form, pairs })
    }
}

/// The token of forms shown before login (double submit: cookie and field must match).
const PRE_CSRF_COOKIE: &str = "rapport_csrf";

/// A logged-in person: their principal (the role's scopes), the session's CSRF token.
pub struct Session {
    pub principal: Principal,
    /// The person logged in (the principal's user).
    pub user: crate::store::User,
    pub csrf: String,
    digest: String,
    /// How many calls wait for approval (the navigation's count).
    pub waiting: u64,
}

impl Session {
    /// Refuses a form that does not carry this session's token (a forged cross-site post).
    pub fn check(&self, token: &str) -> Result<(), PageError> {
        if same(token, &self.csrf) { Ok(()) } else { Err(csrf_refused()) }
    }

    pub fn require(&self, scope: rapport_tools::Scope) -> Result<(), PageError> {
        if self.principal.scopes.contains(&scope) { Ok(()) } else { Err(PageError::forbidden()) }
    }
}

fn csrf_refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "This form did not come from this console, or it is too old (CSRF check). Reload the page and try again.",
    )
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn client_ip(state: &AppState, parts: &Parts) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    crate::auth::client_ip(peer, forwarded, &state.settings.trusted_proxies).to_string()
}

fn secure(state: &AppState) -> &'static str {
    if state.settings.public_url.starts_with("https://") { "; Secure" } else { "" }
}

fn set_cookie(res: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Where to go after logging in: a path of this site only.
fn safe_next(next: Option<&str>) -> &str {
    let local = |n: &str| {
        let b = n.as_bytes();
        // Browsers drop tabs and newlines from URLs and read `\` as `/`: only visible ASCII,
        // no backslash, and no second `/` that would make `//host`.
        b.first() == Some(&b'/')
            && b.get(1) != Some(&b'/')
            && b.iter().all(|c| (0x21..=0x7e).contains(c) && *c != b'\\')
    };
    match next {
        Some(n) if local(n) => n,
        _ => "/",
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Redirect::to(&format!("/login?next={}", super::urlencode(next))).into_response()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE).and_then(Secret::parse) else {
            return Err(to_login());
        };
        let digest = secret.digest().as_str().to_owned();
        let row = state.store.session(&digest).await.map_err(|e| PageError::from(e).into_response())?;
        let Some(row) = row else { return Err(to_login()) };
        let now = time::now_ms();
        if row.seen_at <= now - IDLE_TIMEOUT_MS {
            let _ = state.store.delete_session(&digest).await;
            return Err(to_login());
        }
        if row.seen_at <= now - TOUCH_EVERY_MS
            && let Err(e) = state.store.touch_session(&digest, now).await
        {
            tracing::warn!(error = %e, "could not note a session's use");
        }
        let ip = client_ip(state, parts);
        let user = row.user.clone();
        let principal = Principal::person(row.org, row.user, Some(ip));
        let waiting = crate::service::approvals::pending(state, &principal).await;
        Ok(Session { principal, user, csrf: row.csrf, digest, waiting })
    }
}

/// A form body; a body that does not parse is refused in the console's frame.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(PageForm(v)),
            Err(r) => Err(PageError::new(r.status(), format!("The form could not be read: {}", r.body_text()))),
        }
    }
}

/// The token of forms shown before login, set as a cookie beside the page.
fn pre_csrf(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, PRE_CSRF_COOKIE).and_then(Secret::parse) {
        Some(s) => (s.expose().to_owned(), false),
        None => (Secret::generate().expose().to_owned(), true),
    }
}

fn with_pre_csrf(state: &AppState, mut res: Response, token: &str, fresh: bool) -> Response {
    if fresh {
        set_cookie(&mut res, format!("{PRE_CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}", secure(state)));
    }
    res
}

fn check_pre_csrf(headers: &HeaderMap, token: &str) -> Result<(), PageError> {
    match cookie(headers, PRE_CSRF_COOKIE) {
        Some(c) if same(token, c) => Ok(()),
        _ => Err(csrf_refused()),
    }
}

/// Logs `user` in: a new session and its cookie, then on to `next`.
async fn log_in(state: &AppState, user: &User, ip: &str, next: &str) -> PageResult {
    let (secret, _csrf) = auth_session::start(&state.store, user, ip).await?;
    let mut res = Redirect::to(next).into_response();
    set_cookie(
        &mut res,
        format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{}", secret.expose(), secure(state)),
    );
    set_cookie(&mut res, format!("{PRE_CSRF_COOKIE}=; Path=/; Max-Age=0"));
    Ok(res)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    email: String,
    org: String,
    next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

pub async fn login_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let (token, fresh) = pre_csrf(&headers);
    let page = LoginPage {
        c: Chrome::public("Log in", token.clone(), None),
        email: String::new(),
        org: String::new(),
        next: safe_next(q.next.as_deref()).to_owned(),
    };
    with_pre_csrf(&state, render(&page), &token, fresh)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    next: String,
}

pub async fn login(State(state): State<AppState>, req: Request) -> PageResult {
    let (parts, body) = req.into_parts();
    let ip = client_ip(&state, &parts);
    let PageForm(f) = PageForm::<LoginForm>::from_request(Request::from_parts(parts.clone(), body), &state).await?;
    check_pre_csrf(&parts.headers, &f.csrf)?;
    let org = Some(f.org.as_str()).filter(|o| !o.trim().is_empty());
    match auth_session::login(&state.store, &f.email, &f.password, org, &ip).await {
        Ok((user, _org)) => log_in(&state, &user, &ip, safe_next(Some(&f.next))).await,
        Err(LoginError::Store(e)) => Err(e.into()),
        Err(e) => {
            let status = match &e {
                LoginError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let page = LoginPage {
                c: Chrome::public("Log in", f.csrf.clone(), Flash::error(e.to_string())),
                email: f.email.clone(),
                org: f.org.clone(),
                next: safe_next(Some(&f.next)).to_owned(),
            };
            let mut res = (status, render(&page)).into_response();
            if let LoginError::Throttled { retry_after_secs } = e {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            Ok(res)
        }
    }
}

pub async fn logout(State(state): State<AppState>, Posted { session: s, .. }: Posted) -> PageResult {
    state.store.delete_session(&s.digest).await?;
    let mut res = Redirect::to("/login").into_response();
    set_cookie(&mut res, format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}", secure(&state)));
    Ok(res)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    c: Chrome,
    action: &'static str,
    heading: String,
    intro: String,
    token: String,
    email: String,
    button: &'static str,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn password_page(
    purpose: LinkPurpose,
    user: &User,
    org: &Org,
    token: &str,
    csrf: String,
    flash: Option<Flash>,
) -> PasswordPage {
    let (action, heading, intro, button) = match purpose {
        LinkPurpose::Setup => (
            "/setup",
            "Set up Rapport".to_owned(),
            format!(
                "Choose the password for {}, the owner of {}. You will use it to log in to this console.",
                user.email, org.name
            ),
            "Set password and log in",
        ),
        LinkPurpose::Invite => (
            "/invite",
            format!("Join {} on Rapport", org.name),
            format!("You were invited as {} ({}). Choose a password to accept.", user.email, user.role),
            "Accept invitation",
        ),
    };
    PasswordPage {
        c: Chrome::public(heading.clone(), csrf, flash),
        action,
        heading,
        intro,
        token: token.to_owned(),
        email: user.email.clone(),
        button,
    }
}

async fn link_page(state: AppState, headers: HeaderMap, token: String, purpose: LinkPurpose) -> PageResult {
    let (user, org) = access::peek(&state.store, purpose, &token)
        .await
        .map_err(|e| PageError::new(StatusCode::GONE, e.to_string()))?;
    let (csrf, fresh) = pre_csrf(&headers);
    let page = password_page(purpose, &user, &org, &token, csrf.clone(), None);
    Ok(with_pre_csrf(&state, render(&page), &csrf, fresh))
}

pub async fn setup_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> PageResult {
    link_page(state, headers, q.token, LinkPurpose::Setup).await
}

pub async fn invite_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> PageResult {
    link_page(state, headers, q.token, LinkPurpose::Invite).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn redeem(state: AppState, req: Request, purpose: LinkPurpose) -> PageResult {
    let (parts, body) = req.into_parts();
    let ip = client_ip(&state, &parts);
    let PageForm(f) = PageForm::<PasswordForm>::from_request(Request::from_parts(parts.clone(), body), &state).await?;
    check_pre_csrf(&parts.headers, &f.csrf)?;
    let (user, org) = access::peek(&state.store, purpose, &f.token)
        .await
        .map_err(|e| PageError::new(StatusCode::GONE, e.to_string()))?;
    let problem = if f.password != f.confirm {
        Some("The two passwords differ; type the same one twice.".to_owned())
    } else {
        Password::parse(&f.password).err()
    };
    if let Some(problem) = problem {
        let page = password_page(purpose, &user, &org, &f.token, f.csrf.clone(), Flash::error(problem));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
    }
    let password = Password::parse(&f.password).map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e))?;
    let (user, _) = access::redeem(&state.store, purpose, &f.token, password, &ip)
        .await
        .map_err(|e| PageError::new(StatusCode::GONE, e.to_string()))?;
    let next = if user.role.scopes().contains(&rapport_tools::Scope::KeysManage) { "/settings/keys" } else { "/" };
    log_in(&state, &user, &ip, next).await
}

pub async fn setup(State(state): State<AppState>, req: Request) -> PageResult {
    redeem(state, req, LinkPurpose::Setup).await
}

pub async fn invite(State(state): State<AppState>, req: Request) -> PageResult {
    redeem(state, req, LinkPurpose::Invite).await
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        for ok in ["/", "/settings/keys", "/records/contacts?q=a%20b"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in ["//evil.com", "/\\evil.com", "/\t/evil.com", "/\n/evil.com", "https://evil.com", "evil", "", "/é"]
        {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
