//! The web console over HTTP, as a browser without scripts would use it: sessions shared
//! through the database, the login throttle, CSRF, the security headers, and the line
//! between keys (API only) and sessions (console only). The browser itself is in
//! tests/browser.

use std::collections::HashMap;

use rapport::auth::session::Password;
use rapport::crm::Principal;
use rapport::keys::access;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::helpers::{TestApp, serve_args, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery staple";

/// A cookie jar over a client that does not follow redirects.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Browser {
    fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, base: base.to_owned(), cookies: HashMap::new() }
    }

    fn at(&self, base: &str) -> Browser {
        Browser::new(base).with_cookies(self.cookies.clone())
    }

    fn with_cookies(mut self, cookies: HashMap<String, String>) -> Browser {
        self.cookies = cookies;
        self
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let res = req.header("cookie", cookie.join("; ")).send().await.expect("request sent");
        for v in res.headers().get_all(SET_COOKIE) {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        Page { status: res.status(), headers: res.headers().clone(), body: res.text().await.unwrap_or_default() }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    async fn login(&mut self, email: &str, password: &str) -> Page {
        let csrf = self.get("/login").await.csrf();
        self.post("/login", &[("csrf", &csrf), ("email", email), ("password", password)]).await
    }
}

async fn set_password(app: &TestApp, email: &str) {
    access::set_password(&app.store, &app.cli(), email, Password::parse(PASSWORD).unwrap()).await.unwrap();
}

async fn logged_in(app: &TestApp) -> Browser {
    set_password(app, "owner@localhost").await;
    let mut b = Browser::new(&app.base);
    let page = b.login("owner@localhost", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(b.cookies.contains_key("rapport_session"));
    b
}

#[tokio::test]
async fn pages_send_the_security_headers_and_keys_and_sessions_stay_apart() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app.base);
    let page = b.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    let h = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(h("content-security-policy").contains("default-src 'none'"), "{:?}", page.headers);
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("referrer-policy"), "same-origin");
    assert_eq!(h("cache-control"), "no-store");
    assert!(page.body.contains("<label for=\"email\">Email</label>"));

    // A key opens no console page: it is not even looked at.
    let res = b.client.get(format!("{}/settings/keys", app.base)).header("x-api-key", &app.key).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()[LOCATION].to_str().unwrap().starts_with("/login?next="));

    // A session opens no API route.
    let mut b = logged_in(&app).await;
    assert_eq!(b.get("/settings/keys").await.status, StatusCode::OK);
    for path in ["/api/v1/keys", "/api/v1/audit"] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{path}: {}", page.body);
        assert!(page.body.contains("missing_api_key"));
    }
    // Unknown pages answer in the console's frame; unknown API routes stay JSON.
    let page = b.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Not found") && page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn forged_forms_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let mut b = logged_in(&app).await;
    let keys_before = app.store.list_keys(&app.default_org.id, true).await.unwrap().len();
    for form in
        [vec![("name", "forged")], vec![("name", "forged"), ("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]]
    {
        let page = b.post("/settings/keys", &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("CSRF"), "{}", page.body);
    }
    let page = b.post("/logout", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.list_keys(&app.default_org.id, true).await.unwrap().len(), keys_before);
    assert_eq!(b.get("/settings/keys").await.status, StatusCode::OK, "the forged logout ended nothing");

    // The login form carries its own token, bound to a cookie.
    let mut fresh = Browser::new(&app.base);
    let page = fresh.post("/login", &[("email", "owner@localhost"), ("password", PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!fresh.cookies.contains_key("rapport_session"));
}

#[tokio::test]
async fn logins_are_throttled_per_account_and_per_address() {
    let app = spawn_app().await;
    set_password(&app, "owner@localhost").await;
    let mut b = Browser::new(&app.base);
    for i in 0..10 {
        let page = b.login("owner@localhost", "wrong password, try again").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(page.body.contains("do not match"));
    }
    // The eleventh is refused before the password is checked, even the right one.
    let page = b.login("owner@localhost", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = page.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(page.body.contains("too many failed logins"));
    assert!(!b.cookies.contains_key("rapport_session"));
    // Another account from the same address is refused too: the address is spent.
    let page = b.login("someone@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);

    // Fifteen minutes later the window has passed.
    app.sql("UPDATE login_failures SET at = at - 900001 WHERE subject <> $1", "").await;
    let page = b.login("owner@localhost", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    // Counted in the database: a second process sees the same failures.
    let other = app.second_server().await;
    let mut b2 = Browser::new(&other.base);
    for _ in 0..10 {
        b.login("nobody@example.com", "wrong password, try again").await;
    }
    assert_eq!(b2.login("nobody@example.com", "wrong password, try again").await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sessions_live_in_the_database_and_end_everywhere() {
    let app = spawn_app().await;
    let other = app.second_server().await;
    let mut a = logged_in(&app).await;
    let mut b = a.at(&other.base);
    assert_eq!(b.get("/activity").await.status, StatusCode::OK, "the other process honours the session");

    // Logging out through one ends it in the other at once.
    let csrf = a.get("/activity").await.csrf();
    let page = a.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.set_cookie("rapport_session").unwrap().contains("Max-Age=0"));
    assert!(b.get("/activity").await.location().starts_with("/login"));

    // Deactivating a person ends their sessions.
    let mut a = logged_in(&app).await;
    let mut b = a.at(&other.base);
    rapport::keys::users::create(&app.store, &app.cli(), "second@example.com", None, "owner").await.unwrap();
    rapport::keys::users::set_active(&app.store, &app.cli(), "owner@localhost", false).await.unwrap();
    assert!(a.get("/activity").await.location().starts_with("/login"));
    assert!(b.get("/activity").await.location().starts_with("/login"));
    rapport::keys::users::set_active(&app.store, &app.cli(), "owner@localhost", true).await.unwrap();

    // Idle for 12 hours: over.
    let mut a = logged_in(&app).await;
    assert_eq!(a.get("/activity").await.status, StatusCode::OK);
    app.sql("UPDATE sessions SET seen_at = seen_at - 43200001 WHERE user_id <> $1", "").await;
    assert!(a.get("/activity").await.location().starts_with("/login"));
}

#[tokio::test]
async fn setup_links_work_once_and_expire() {
    let app = spawn_app().await;
    let link = access::setup_link(&app.store, &app.cli(), None, &app.base).await.unwrap();
    let path = link.url.strip_prefix(&app.base).unwrap().to_owned();
    let mut b = Browser::new(&app.base);
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("owner@localhost"));
    let token = path.split("token=").nth(1).unwrap();
    let csrf = page.csrf();
    // Too short a password: refused, and the link still works.
    let page =
        b.post("/setup", &[("csrf", &csrf), ("token", token), ("password", "short"), ("confirm", "short")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("at least 12 characters"));
    let page =
        b.post("/setup", &[("csrf", &csrf), ("token", token), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/settings/keys");
    assert_eq!(b.get("/settings/keys").await.status, StatusCode::OK);
    // Spent.
    let page = Browser::new(&app.base).get(&path).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("rapport setup-link"));

    // A link older than 24 hours is refused.
    let link = access::setup_link(&app.store, &app.cli(), None, &app.base).await.unwrap();
    app.sql("UPDATE link_tokens SET expires_at = created_at - 1 WHERE purpose = $1", "setup").await;
    let path = link.url.strip_prefix(&app.base).unwrap();
    assert_eq!(Browser::new(&app.base).get(path).await.status, StatusCode::GONE);

    // Setup and the recovery are in the audit log.
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 50).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"user.setup_link") && actions.contains(&"user.setup"), "{actions:?}");
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let mut args = serve_args();
    args.public_url = Some("https://crm.example.com".into());
    let app = spawn_app_with(args).await;
    set_password(&app, "owner@localhost").await;
    let mut b = Browser::new(&app.base);
    let page = b.login("owner@localhost", PASSWORD).await;
    let cookie = page.set_cookie("rapport_session").expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    // On plain http (the default) the cookie could not be sent with Secure.
    let plain = spawn_app().await;
    set_password(&plain, "owner@localhost").await;
    let cookie =
        Browser::new(&plain.base).login("owner@localhost", PASSWORD).await.set_cookie("rapport_session").unwrap();
    assert!(cookie.contains("HttpOnly") && !cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn the_console_grants_no_more_than_the_person_holds() {
    let app = spawn_app().await;
    rapport::keys::users::create(&app.store, &app.cli(), "admin@example.com", None, "admin").await.unwrap();
    set_password(&app, "admin@example.com").await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.login("admin@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let csrf = b.get("/settings/keys").await.csrf();
    let before = app.store.list_keys(&app.default_org.id, true).await.unwrap().len();
    // org:manage is an owner's; an admin cannot put it on a key.
    let page = b
        .post("/settings/keys", &[("csrf", &csrf), ("name", "too strong"), ("role", "custom"), ("scope", "org:manage")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("you cannot grant `org:manage`"), "{}", page.body);
    let page = b.post("/settings/keys", &[("csrf", &csrf), ("name", "too strong"), ("role", "owner")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.list_keys(&app.default_org.id, true).await.unwrap().len(), before);
    // "Connect an agent" makes a key that is theirs too.
    let page = b.post("/settings/keys/connect", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    let admin = app.store.user_by_email(&app.default_org.id, "admin@example.com").await.unwrap().unwrap();
    let keys = app.store.list_keys(&app.default_org.id, true).await.unwrap();
    assert!(keys.iter().any(|k| k.name == "all clients" && k.user_id == admin.id), "{keys:?}");
    // What the admin holds works, and the key is theirs, with them as the audit actor.
    let page = b
        .post(
            "/settings/keys",
            &[
                ("csrf", &csrf),
                ("name", "two scopes"),
                ("role", "custom"),
                ("scope", "contacts:read"),
                ("scope", "deals:read"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    let keys = app.store.list_keys(&app.default_org.id, true).await.unwrap();
    let key = keys.iter().find(|k| k.name == "two scopes").unwrap();
    let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
    assert_eq!(scopes, ["contacts:read", "deals:read"]);
    assert_eq!(key.user_id, admin.id);
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 5).await.unwrap();
    let created = audit.iter().find(|e| e.action == "key.create").unwrap();
    assert_eq!(created.actor.id(), Some(&admin.id));
    assert_eq!(created.actor.kind(), "user");
}

#[tokio::test]
async fn activity_pages_filters_and_links_only_what_the_person_may_read() {
    let app = spawn_app().await;
    // 60 contacts by the owner key, 3 by a second key: two pages, and filters that narrow.
    let contacts: Vec<serde_json::Value> = (0..60)
        .map(|i| serde_json::json!({ "first_name": format!("Paged{i:02}"), "email": format!("p{i}@example.com") }))
        .collect();
    app.create_contacts(serde_json::Value::Array(contacts)).await;
    let other_key = app.key_with(Some("member"), &[]).await;
    for i in 0..3 {
        let args = serde_json::json!({ "contacts": [{ "first_name": format!("Other{i}") }] });
        app.call_as(&other_key, "create_contacts", args).await.unwrap();
    }
    let mut b = logged_in(&app).await;
    let page = b.get("/activity").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<li class=\"entry\"").count(), 50);
    assert!(page.body.contains("Other2") && !page.body.contains("Paged00"), "newest first");
    let next = page.body.split("href=\"/activity?cursor=").nth(1).expect("a link to older activity");
    let next = format!("/activity?cursor={}", next.split('"').next().unwrap().replace("&amp;", "&"));
    let older = b.get(&next).await;
    assert_eq!(older.body.matches("<li class=\"entry\"").count(), 13);
    assert!(older.body.contains("Paged00") && !older.body.contains("Older activity"));

    // By key: only the second key's three.
    let keys = app.store.list_keys(&app.default_org.id, false).await.unwrap();
    let second = keys.iter().find(|k| k.name == "scoped").unwrap();
    let page = b.get(&format!("/activity?key={}", second.id)).await;
    assert_eq!(page.body.matches("<li class=\"entry\"").count(), 3);
    // By person: the owner made them all (both keys are theirs); nobody else made any.
    let owner = app.store.user_by_email(&app.default_org.id, "owner@localhost").await.unwrap().unwrap();
    assert_eq!(b.get(&format!("/activity?user={}", owner.id)).await.body.matches("<li class=\"entry\"").count(), 50);
    assert!(b.get("/activity?user=nobody").await.body.contains("Nothing matches these filters"));
    // By entity: no companies.
    assert!(b.get("/activity?entity=company").await.body.contains("Nothing matches these filters"));
    assert_eq!(b.get("/activity?entity=nonsense").await.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/activity?cursor=forged").await.status, StatusCode::BAD_REQUEST);

    // Each entry links to its record, whose page names it; another organization's record
    // is not found.
    let id = page.body.split("href=\"/records/contacts/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let record = b.get(&format!("/records/contacts/{id}")).await;
    assert_eq!(record.status, StatusCode::OK);
    assert!(record.body.contains("<h1>Other"), "{}", record.body);
    let (_, key) = app.new_org("elsewhere").await;
    let theirs = app
        .call_as(&key, "create_contacts", serde_json::json!({ "contacts": [{ "first_name": "Hidden" }] }))
        .await
        .unwrap();
    let theirs = theirs["items"][0]["id"].as_str().unwrap();
    assert_eq!(b.get(&format!("/records/contacts/{theirs}")).await.status, StatusCode::NOT_FOUND);
    assert!(!b.get("/records/contacts?q=Hidden").await.body.contains("Hidden</a>"));
    assert_eq!(b.get("/records/widgets").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_burst_of_guesses_counts_in_full() {
    let app = spawn_app().await;
    set_password(&app, "owner@localhost").await;
    let csrf_page = Browser::new(&app.base);
    let mut probe = csrf_page;
    let csrf = probe.get("/login").await.csrf();
    let cookies = probe.cookies.clone();
    let tries = (0..20).map(|_| {
        let mut b = Browser::new(&app.base).with_cookies(cookies.clone());
        let csrf = csrf.clone();
        async move {
            b.post("/login", &[("csrf", &csrf), ("email", "owner@localhost"), ("password", "a wrong guess, again")])
                .await
                .status
        }
    });
    let statuses = futures::future::join_all(tries).await;
    let guessed = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(guessed + refused, 20, "{statuses:?}");
    assert!(guessed <= 10, "{guessed} passwords were checked in a burst of 20: {statuses:?}");
}

#[tokio::test]
async fn links_cannot_open_an_account_beyond_the_sender_or_reset_a_chosen_password() {
    let app = spawn_app().await;
    let cli = app.cli();
    rapport::keys::users::create(&app.store, &cli, "admin@example.com", None, "admin").await.unwrap();
    let admin_user = app.store.user_by_email(&app.default_org.id, "admin@example.com").await.unwrap().unwrap();
    let admin = Principal::person(app.default_org.clone(), admin_user.clone(), None);
    // owner@localhost has no password yet: an admin may not send them a link.
    let refused = access::invite(&app.store, &admin, "owner@localhost", "owner", &app.base).await;
    assert!(matches!(refused, Err(rapport::keys::KeyError::Forbidden(_))), "{refused:?}");
    // Through the console too.
    set_password(&app, "admin@example.com").await;
    let mut b = Browser::new(&app.base);
    b.login("admin@example.com", PASSWORD).await;
    let csrf = b.get("/settings/users").await.csrf();
    let page = b.post("/settings/users", &[("csrf", &csrf), ("email", "owner@localhost"), ("role", "member")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("a role beyond yours") && !page.body.contains("/invite?token="), "{}", page.body);

    // An invitation, then a password chosen another way: the invitation is spent.
    let (_, invite) = access::invite(&app.store, &admin, "new@example.com", "member", &app.base).await.unwrap();
    let path = invite.url.strip_prefix(&app.base).unwrap().to_owned();
    assert_eq!(Browser::new(&app.base).get(&path).await.status, StatusCode::OK);
    access::set_password(&app.store, &cli, "new@example.com", Password::parse(PASSWORD).unwrap()).await.unwrap();
    assert_eq!(Browser::new(&app.base).get(&path).await.status, StatusCode::GONE);
    // And once someone has a password, no new invitation is made for them.
    let again = access::invite(&app.store, &admin, "new@example.com", "member", &app.base).await;
    assert!(again.is_err());

    // A setup link used spends the owner's other links; deactivation spends them all.
    let first = access::setup_link(&app.store, &cli, None, &app.base).await.unwrap();
    let second = access::setup_link(&app.store, &cli, None, &app.base).await.unwrap();
    let mut b = Browser::new(&app.base);
    let path = first.url.strip_prefix(&app.base).unwrap().to_owned();
    let csrf = b.get(&path).await.csrf();
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let page =
        b.post("/setup", &[("csrf", &csrf), ("token", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(Browser::new(&app.base).get(second.url.strip_prefix(&app.base).unwrap()).await.status, StatusCode::GONE);
    let link = access::setup_link(&app.store, &cli, Some("admin@example.com"), &app.base).await.unwrap();
    rapport::keys::users::set_active(&app.store, &cli, "admin@example.com", false).await.unwrap();
    assert_eq!(Browser::new(&app.base).get(link.url.strip_prefix(&app.base).unwrap()).await.status, StatusCode::GONE);
}

/// SPEC 3, Authority, in the console: an admin person cannot rotate or enable an owner's
/// key, nor change an owner's role or deactivate them; the pages offer neither.
#[tokio::test]
async fn the_console_keeps_an_admin_off_what_is_an_owners() {
    let app = spawn_app().await;
    app.person("owner2@example.com", "owner").await;
    app.person("admin@example.com", "admin").await;
    let (_, spare) = app.key_of("owner@localhost", "owner spare", Some("owner"), &[]).await;
    set_password(&app, "admin@example.com").await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.login("admin@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let owner_key = app.key_id("test owner").await;

    let keys_page = b.get("/settings/keys").await;
    assert!(!keys_page.body.contains(&format!("/settings/keys/{owner_key}/rotate")), "no Rotate offered");
    let csrf = keys_page.csrf();
    let page = b.post(&format!("/settings/keys/{owner_key}/rotate"), &[("csrf", &csrf), ("grace_hours", "0")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(!page.body.contains("rpk_"), "no new secret");
    let after = b.get("/settings/keys").await;
    assert!(after.body.contains("org:manage"), "the refusal says why");
    assert_eq!(app.mcp_status(&app.key).await, StatusCode::OK, "the owner's key is untouched");
    // Disabling stays open; enabling again is refused.
    b.post(&format!("/settings/keys/{spare}/status"), &[("csrf", &csrf), ("enabled", "false")]).await;
    b.post(&format!("/settings/keys/{spare}/status"), &[("csrf", &csrf), ("enabled", "true")]).await;
    let k = app.store.get_key(&app.default_org.id, &spare).await.unwrap().unwrap();
    assert_eq!(k.status.as_str(), "disabled");

    let owner2 = app.store.user_by_email(&app.default_org.id, "owner2@example.com").await.unwrap().unwrap();
    let users = b.get("/settings/users").await;
    assert!(users.body.contains("beyond your role"));
    assert!(!users.body.contains(&format!("/settings/users/{}/active", owner2.id)), "no Deactivate offered");
    let csrf = users.csrf();
    b.post(&format!("/settings/users/{}/role", owner2.id), &[("csrf", &csrf), ("role", "viewer")]).await;
    b.post(&format!("/settings/users/{}/active", owner2.id), &[("csrf", &csrf), ("active", "false")]).await;
    let owner2 = app.store.user_by_email(&app.default_org.id, "owner2@example.com").await.unwrap().unwrap();
    assert_eq!((owner2.role, owner2.active), (rapport_tools::Role::Owner, true));
    let body = b.get("/settings/users").await.body;
    assert!(body.contains("owner2@example.com has the role owner"), "{body}");
}

/// A stranger failing logins for the owner's account from one address locks out that
/// address, not the owner logging in from another (SPEC 8).
#[tokio::test]
async fn a_strangers_guesses_do_not_lock_the_owner_out() {
    let app = spawn_app_with(rapport::config::ServeArgs {
        trusted_proxies: vec!["127.0.0.1/32".into(), "::1/128".into()],
        ..serve_args()
    })
    .await;
    set_password(&app, "owner@localhost").await;
    async fn login_from(b: &mut Browser, ip: &str, email: &str, password: &str) -> Page {
        let req = b.client.get(format!("{}/login", b.base)).header("x-forwarded-for", ip);
        let csrf = b.send(req).await.csrf();
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", csrf.as_str()), ("email", email), ("password", password)])
            .finish();
        let req = b
            .client
            .post(format!("{}/login", b.base))
            .header("x-forwarded-for", ip)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        b.send(req).await
    }
    let mut attacker = Browser::new(&app.base);
    for _ in 0..10 {
        let page = login_from(&mut attacker, "198.51.100.7", "owner@localhost", "guess guess guess").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // The attacker's address is held back, even with the right password.
    let page = login_from(&mut attacker, "198.51.100.7", "owner@localhost", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    // Another address that failed for the account before is held back too, once it is over.
    let mut other = Browser::new(&app.base);
    assert_eq!(
        login_from(&mut other, "198.51.100.8", "owner@localhost", "one more guess").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&mut other, "198.51.100.8", "owner@localhost", "and another").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Knocking while held back does not count: once its own failure is out of the window
    // that address may try again, though the account is still over its limit.
    for _ in 0..3 {
        let page = login_from(&mut other, "198.51.100.8", "owner@localhost", "knock").await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    }
    app.sql("UPDATE login_failures SET at = at - 900001 WHERE subject LIKE $1", "%from:198.51.100.8").await;
    assert_eq!(
        login_from(&mut other, "198.51.100.8", "owner@localhost", "try again").await.status,
        StatusCode::UNAUTHORIZED
    );
    // The owner, from an address that never failed, gets in.
    let mut owner = Browser::new(&app.base);
    let page = login_from(&mut owner, "203.0.113.5", "owner@localhost", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(owner.cookies.contains_key("rapport_session"));
}

/// Someone without keys:manage and users:manage sees keys and people in the Activity
/// filter menus by name only: no key previews, ids or emails (SPEC 8); the filters work.
#[tokio::test]
async fn a_viewers_activity_menus_name_keys_and_people_without_their_ids() {
    let app = spawn_app().await;
    app.person("viewer@example.com", "viewer").await;
    app.create_contacts(serde_json::json!([{ "first_name": "ByOwner" }])).await;
    let other = app.key_with(Some("member"), &[]).await;
    for i in 0..3 {
        let args = serde_json::json!({ "contacts": [{ "first_name": format!("ByScoped{i}") }] });
        app.call_as(&other, "create_contacts", args).await.unwrap();
    }
    set_password(&app, "viewer@example.com").await;
    let mut b = Browser::new(&app.base);
    assert_eq!(b.login("viewer@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let page = b.get("/activity").await;
    assert_eq!(page.status, StatusCode::OK);
    let keys = app.store.list_keys(&app.default_org.id, true).await.unwrap();
    let users = app.store.list_users(&app.default_org.id).await.unwrap();
    assert!(!page.body.contains("rpk_"), "no key previews");
    for k in &keys {
        assert!(!page.body.contains(k.id.as_str()), "key id {} shown", k.id);
    }
    for u in &users {
        assert!(!page.body.contains(u.id.as_str()), "user id shown");
    }
    assert!(!page.body.contains("owner@localhost"), "no emails of others");
    assert!(page.body.contains(">scoped<"), "keys by name");
    // The menu's value filters all the same.
    let value = page.body.split("<option value=\"").map(|o| o.split('"').next().unwrap()).find(|v| {
        page.body.contains(&format!("<option value=\"{v}\">scoped<"))
            || page.body.contains(&format!("<option value=\"{v}\" selected>scoped<"))
    });
    let value = value.expect("an option for the key named scoped").to_owned();
    let filtered = b.get(&format!("/activity?key={value}")).await;
    assert_eq!(filtered.body.matches("<li class=\"entry\"").count(), 3, "{}", filtered.body);
}

/// The keys page shows a use this process saw at once, time and address together, before
/// the periodic write.
#[tokio::test]
async fn the_keys_page_shows_where_a_key_was_just_used() {
    let app = spawn_app().await;
    let mut b = logged_in(&app).await;
    assert_eq!(app.mcp_status(&app.key).await, StatusCode::OK);
    let page = b.get("/settings/keys").await;
    assert!(page.body.contains("just now"), "{}", page.body);
    assert!(page.body.contains("from <code>127.0.0.1</code>"), "{}", page.body);
}

/// Activity shows the changes of one call together, as a run that narrows to them, and
/// filters by client and tool (SPEC 12).
#[tokio::test]
async fn activity_groups_a_calls_changes_and_filters_by_client_and_tool() {
    let app = spawn_app().await;
    let send = |ua: &'static str, tool: &'static str, args: serde_json::Value| {
        let req = app
            .client
            .post(app.mcp_url())
            .header("x-api-key", &app.key)
            .header("accept", "application/json, text/event-stream")
            .header("user-agent", ua)
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}}));
        async move { assert_eq!(req.send().await.unwrap().status(), StatusCode::OK) }
    };
    let three =
        serde_json::json!({ "contacts": [{ "first_name": "A1" }, { "first_name": "A2" }, { "first_name": "A3" }] });
    send("curl/8.5.0", "create_contacts", three).await;
    send("python-httpx/0.28", "create_companies", serde_json::json!({ "companies": [{ "name": "Solo" }] })).await;
    let mut b = logged_in(&app).await;
    let page = b.get("/activity").await;
    assert!(page.body.contains("One call made the 3 changes below"), "{}", page.body);
    assert!(page.body.contains("create contacts, from curl 8.5.0"), "{}", page.body);
    let run = page
        .body
        .split("<li class=\"run-head\"><a href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let narrowed = b.get(&run).await;
    assert_eq!(narrowed.body.matches("<li class=\"entry\"").count(), 3, "{}", narrowed.body);
    assert!(!narrowed.body.contains("Solo"));
    let by_client = b.get("/activity?client=python-httpx").await;
    assert_eq!(by_client.body.matches("<li class=\"entry\"").count(), 1);
    assert!(by_client.body.contains("Solo"));
    let by_tool = b.get("/activity?tool=create_contacts").await;
    assert_eq!(by_tool.body.matches("<li class=\"entry\"").count(), 3);
    assert!(page.body.contains("<option value=\"curl\">curl</option>"), "the client menu");
}

/// An invitation is judged against the role its person had when it was sent: a link an admin
/// holds for a member opens nothing once the member became an owner.
#[tokio::test]
async fn an_invitation_dies_when_its_persons_role_changes() {
    let app = spawn_app().await;
    app.person("admin@example.com", "admin").await;
    let admin_user = app.store.user_by_email(&app.default_org.id, "admin@example.com").await.unwrap().unwrap();
    let admin = Principal::person(app.default_org.clone(), admin_user.clone(), None);
    let (_, link) = access::invite(&app.store, &admin, "x@example.com", "member", &app.base).await.unwrap();
    let path = link.url.strip_prefix(&app.base).unwrap().to_owned();
    assert_eq!(Browser::new(&app.base).get(&path).await.status, StatusCode::OK);
    rapport::keys::users::set_role(&app.store, &app.cli(), "x@example.com", "owner").await.unwrap();
    assert_eq!(Browser::new(&app.base).get(&path).await.status, StatusCode::GONE);
    // And the admin cannot send a new one.
    let again = access::invite(&app.store, &admin, "x@example.com", "member", &app.base).await;
    assert!(matches!(again, Err(rapport::keys::KeyError::Forbidden(_))), "{again:?}");
}

// ------------------------------------------------------------------ Settings → Webhooks

/// What a webhook receiver on 127.0.0.1 got: each request's `webhook-id`,
/// `webhook-timestamp`, `webhook-signature` and raw body. It answers 204.
#[derive(Clone, Default)]
struct Hooks(std::sync::Arc<std::sync::Mutex<Vec<[String; 4]>>>);

impl Hooks {
    async fn start() -> (Hooks, String) {
        let hooks = Hooks::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = hooks.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                got.0.lock().unwrap().push([h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"), body]);
                StatusCode::NO_CONTENT
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hooks, url)
    }

    fn got(&self) -> Vec<[String; 4]> {
        self.0.lock().unwrap().clone()
    }
}

/// Whether `secret` (`whsec_…`) made one of the request's signatures.
fn signed_with(secret: &str, [id, timestamp, signature, body]: &[String; 4]) -> bool {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").expect("a whsec_ secret")).unwrap();
    let mut mac = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected)
}

/// The secret a page shows once.
fn secret_in(page: &Page) -> String {
    let at = page.body.find("id=\"new-secret\">").expect("a secret shown") + 16;
    page.body[at..].split('<').next().unwrap().to_owned()
}

async fn webhooks(app: &TestApp) -> Vec<serde_json::Value> {
    app.ok("list_webhooks", serde_json::json!({})).await["items"].as_array().unwrap().clone()
}

/// Reloads `path` until `ok` holds for its body (20 s at most); the last page.
async fn page_until(b: &mut Browser, path: &str, ok: impl Fn(&str) -> bool) -> Page {
    for _ in 0..200 {
        let page = b.get(path).await;
        if ok(&page.body) {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = b.get(path).await;
    panic!("{path} never showed what was expected:\n{}", page.body);
}

#[tokio::test]
async fn webhooks_are_created_edited_rotated_resent_and_deleted_in_the_console() {
    let app = spawn_app().await;
    let (hooks, url) = Hooks::start().await;
    let mut b = logged_in(&app).await;
    let page = b.get("/settings/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("href=\"/settings/webhooks\" aria-current=\"page\">Webhooks</a>"), "{}", page.body);
    assert!(page.body.contains("No webhooks yet"));
    let csrf = page.csrf();

    // Refused input comes back with the message and what was typed; nothing is made.
    let page = b
        .post(
            "/settings/webhooks",
            &[("csrf", &csrf), ("url", &url), ("events", "contact.created, deal.exploded"), ("description", "Kept")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("`deal.exploded` is not an event pattern"), "{}", page.body);
    assert!(page.body.contains(&format!("value=\"{url}\"")) && page.body.contains("value=\"Kept\""));
    assert!(page.body.contains("value=\"contact.created, deal.exploded\""));
    assert!(page.body.contains("aria-invalid=\"true\"") && !page.body.contains("whsec_"));
    let page = b.post("/settings/webhooks", &[("csrf", &csrf), ("url", "ftp://example.com/x"), ("events", "*")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("`url`"), "{}", page.body);
    assert!(webhooks(&app).await.is_empty());

    // Created: the secret is shown this once, with how a receiver checks it.
    let page = b
        .post(
            "/settings/webhooks",
            &[
                ("csrf", &csrf),
                ("url", &url),
                ("events", "contact.* deal.*,*.deleted"),
                ("description", "CRM sync"),
                ("enabled", "true"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    let secret = secret_in(&page);
    assert!(secret.starts_with("whsec_") && secret.len() > 30, "{secret}");
    for words in
        ["shown only this once", "you will not see it again", "webhook-id", "webhook-timestamp", "webhook-signature"]
    {
        assert!(page.body.contains(words), "{words}: {}", page.body);
    }
    assert!(page.body.contains("data-copy=\"new-secret\""), "a copy button");
    let list = webhooks(&app).await;
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["events"], serde_json::json!(["contact.*", "deal.*", "*.deleted"]));
    assert_eq!(list[0]["description"], "CRM sync");
    assert_eq!(list[0]["enabled"], true);
    let endpoint = format!("/settings/webhooks/{id}");

    // The list and the endpoint's page never show it.
    let page = b.get("/settings/webhooks").await;
    assert!(page.body.contains(&url) && page.body.contains("CRM sync") && page.body.contains("*.deleted"));
    assert!(!page.body.contains(&secret) && !page.body.contains("whsec_"), "{}", page.body);
    let page = b.get(&endpoint).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(&secret) && !page.body.contains("whsec_"));
    assert!(page.body.contains("No deliveries yet"));

    // A change is delivered, signed with the secret shown, and listed with its attempt.
    app.create_contacts(serde_json::json!([{ "first_name": "Hooked" }])).await;
    let page = page_until(&mut b, &endpoint, |body| body.contains("HTTP 204")).await;
    assert!(page.body.contains("contact.created") && page.body.contains(">delivered<"), "{}", page.body);
    let got = hooks.got();
    assert_eq!(got.len(), 1);
    assert!(signed_with(&secret, &got[0]), "the delivery is signed with the secret shown");
    let delivery = got[0][0].clone();
    assert!(page.body.contains(&format!("data-delivery=\"{delivery}\"")));

    // Resend: back to the endpoint's page with a message; a second attempt follows.
    let csrf = page.csrf();
    let resend = format!("/settings/webhooks/deliveries/{delivery}/resend");
    let res = b.post(&resend, &[("csrf", &csrf), ("endpoint", &id)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), endpoint);
    let page = b.get(&endpoint).await;
    assert!(page.body.contains("again now"), "{}", page.body);
    page_until(&mut b, &endpoint, |body| body.matches("HTTP 204").count() == 2).await;
    assert_eq!(hooks.got().len(), 2);
    let res =
        b.post("/settings/webhooks/deliveries/msg_0123456789abcdef0123456789abcdef/resend", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // Edited: every field, and the switch off; resending then is refused with a message.
    let res = b.post(&endpoint, &[("csrf", &csrf), ("url", &url), ("events", "*"), ("description", "Renamed")]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let list = webhooks(&app).await;
    assert_eq!(list[0]["events"], serde_json::json!(["*"]));
    assert_eq!((list[0]["description"].as_str(), list[0]["enabled"].as_bool()), (Some("Renamed"), Some(false)));
    let page = b.get(&endpoint).await;
    assert!(page.body.contains("Saved the webhook") && page.body.contains(">Disabled<"), "{}", page.body);
    b.post(&resend, &[("csrf", &csrf), ("endpoint", &id)]).await;
    assert!(b.get(&endpoint).await.body.contains("This webhook is disabled"));
    // A refused edit keeps what was typed and changes nothing.
    let page = b.post(&endpoint, &[("csrf", &csrf), ("url", &url), ("events", ""), ("enabled", "true")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("`events` needs at least one pattern"), "{}", page.body);
    assert_eq!(webhooks(&app).await[0]["enabled"], false);
    let res = b
        .post(&endpoint, &[("csrf", &csrf), ("url", &url), ("events", "*"), ("description", ""), ("enabled", "true")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let list = webhooks(&app).await;
    assert!(list[0]["enabled"] == true && list[0].get("description").is_none(), "{list:?}");

    // Rotate: a confirm page, then a new secret shown once; the old one signs for 24 hours.
    let page = b.get(&format!("{endpoint}/rotate")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("24 hours") && page.body.contains("Rotate secret"));
    let page = b.post(&format!("{endpoint}/rotate"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let rotated = secret_in(&page);
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert!(page.body.contains("keeps working for 24 hours") && page.body.contains("you will not see it again"));
    let page = b.get(&endpoint).await;
    assert!(!page.body.contains("whsec_") && page.body.contains("Previous secret"));
    app.create_contacts(serde_json::json!([{ "first_name": "Rotated" }])).await;
    page_until(&mut b, &endpoint, |body| body.matches("HTTP 204").count() == 3).await;
    let last = hooks.got().pop().unwrap();
    assert!(signed_with(&rotated, &last) && signed_with(&secret, &last), "both secrets sign meanwhile");

    // Another organization's endpoint, and one that is not there, are not found.
    assert_eq!(b.get("/settings/webhooks/wh_0123456789abcdef0123456789abcdef").await.status, StatusCode::NOT_FOUND);
    let (_, other_key) = app.new_org("elsewhere").await;
    let theirs =
        app.call_as(&other_key, "create_webhook", serde_json::json!({ "url": url, "events": ["*"] })).await.unwrap();
    let theirs = format!("/settings/webhooks/{}", theirs["id"].as_str().unwrap());
    assert_eq!(b.get(&theirs).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.post(&format!("{theirs}/delete"), &[("csrf", &csrf)]).await.status, StatusCode::NOT_FOUND);

    // Delete: a confirm page, then gone, with a message on the list.
    let page = b.get(&format!("{endpoint}/delete")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Delete webhook"));
    let res = b.post(&format!("{endpoint}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/settings/webhooks");
    let page = b.get("/settings/webhooks").await;
    assert!(page.body.contains("Deleted the webhook") && page.body.contains("No webhooks yet"), "{}", page.body);
    assert!(webhooks(&app).await.is_empty());
    assert_eq!(b.get(&endpoint).await.status, StatusCode::NOT_FOUND);

    // Each change is audited with the person as the actor.
    let owner = app.store.user_by_email(&app.default_org.id, "owner@localhost").await.unwrap().unwrap();
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 50).await.unwrap();
    for action in ["webhook.create", "webhook.update", "webhook.resend", "webhook.delete"] {
        let entry = audit.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action}: {audit:?}"));
        assert_eq!((entry.actor.kind(), entry.actor.id()), ("user", Some(&owner.id)), "{action}");
    }
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_older_pages() {
    let app = spawn_app().await;
    let (_hooks, url) = Hooks::start().await;
    let hook = app.ok("create_webhook", serde_json::json!({ "url": url, "events": ["contact.created"] })).await;
    let endpoint = format!("/settings/webhooks/{}", hook["id"].as_str().unwrap());
    let contacts: Vec<serde_json::Value> =
        (0..30).map(|i| serde_json::json!({ "first_name": format!("Paged{i:02}") })).collect();
    let made = app.create_contacts(serde_json::Value::Array(contacts)).await;
    let mut b = logged_in(&app).await;
    let page = b.get(&endpoint).await;
    assert_eq!(page.body.matches("data-delivery=\"").count(), 25, "{}", page.body);
    let newest = made.last().unwrap()["id"].as_str().unwrap();
    let first = page.body.split("data-delivery=\"").nth(1).unwrap();
    assert!(first.split("</li>").next().unwrap().contains(newest), "newest first");
    let next = page.body.split(&format!("href=\"{endpoint}?cursor=")).nth(1).expect("a link to older deliveries");
    let next = format!("{endpoint}?cursor={}", next.split('"').next().unwrap());
    let older = b.get(&next).await;
    assert_eq!(older.status, StatusCode::OK);
    assert_eq!(older.body.matches("data-delivery=\"").count(), 5);
    assert!(older.body.contains(made[0]["id"].as_str().unwrap()));
    assert!(older.body.contains("Newest deliveries") && !older.body.contains("?cursor="));
    assert_eq!(b.get(&format!("{endpoint}?cursor=forged")).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn forged_webhook_forms_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let hook = app.ok("create_webhook", serde_json::json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] })).await;
    let endpoint = format!("/settings/webhooks/{}", hook["id"].as_str().unwrap());
    let mut b = logged_in(&app).await;
    let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for csrf in [None, Some(forged)] {
        let mut form = vec![("url", "http://127.0.0.1:9/forged"), ("events", "*")];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        let page = b.post("/settings/webhooks", &form).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("CSRF"), "{}", page.body);
        for path in [endpoint.clone(), format!("{endpoint}/rotate"), format!("{endpoint}/delete")] {
            assert_eq!(b.post(&path, &form).await.status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    let list = webhooks(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["url"], hook["url"]);
    assert!(list[0].get("previous_secret_expires_at").is_none(), "not rotated");
}

#[tokio::test]
async fn members_and_viewers_cannot_reach_webhooks() {
    let app = spawn_app().await;
    let hook = app.ok("create_webhook", serde_json::json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] })).await;
    let endpoint = format!("/settings/webhooks/{}", hook["id"].as_str().unwrap());
    for role in ["member", "viewer"] {
        let email = format!("{role}@example.com");
        rapport::keys::users::create(&app.store, &app.cli(), &email, None, role).await.unwrap();
        set_password(&app, &email).await;
        let mut b = Browser::new(&app.base);
        assert_eq!(b.login(&email, PASSWORD).await.status, StatusCode::SEE_OTHER);
        let page = b.get("/activity").await;
        assert!(!page.body.contains("/settings/webhooks"), "{role} is not shown the link");
        let csrf = page.csrf();
        for path in ["/settings/webhooks".to_owned(), endpoint.clone(), format!("{endpoint}/rotate")] {
            let page = b.get(&path).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{role} {path}");
            assert!(page.body.contains("Not allowed"));
        }
        let form = [("csrf", csrf.as_str()), ("url", "http://127.0.0.1:9/theirs"), ("events", "*")];
        for path in ["/settings/webhooks".to_owned(), endpoint.clone(), format!("{endpoint}/delete")] {
            assert_eq!(b.post(&path, &form).await.status, StatusCode::FORBIDDEN, "{role} {path}");
        }
    }
    let list = webhooks(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["url"], hook["url"]);
    // An admin holds webhooks:manage.
    rapport::keys::users::create(&app.store, &app.cli(), "admin@example.com", None, "admin").await.unwrap();
    set_password(&app, "admin@example.com").await;
    let mut b = Browser::new(&app.base);
    b.login("admin@example.com", PASSWORD).await;
    let page = b.get("/settings/webhooks").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("http://127.0.0.1:9/hook"));
}

/// The first `href` after `marker` in a page, unescaped.
fn link_after(body: &str, marker: &str) -> String {
    let at = body.find(marker).unwrap_or_else(|| panic!("{marker} in {body}"));
    let rest = &body[..at];
    let href = rest.rfind("href=\"").expect("a link before the marker") + 6;
    body[href..].split('"').next().unwrap().replace("&amp;", "&")
}

#[tokio::test]
async fn a_run_is_undone_from_activity_after_its_preview() {
    let app = spawn_app().await;
    let agent = app.key_with(Some("admin"), &[]).await;
    let made = app
        .call_as(
            &agent,
            "create_contacts",
            serde_json::json!({ "contacts": [{ "first_name": "Hank" }, { "first_name": "Iris" }] }),
        )
        .await
        .unwrap();
    let hank = made["items"][0]["id"].as_str().unwrap().to_owned();
    let live = || async { app.search_ids(serde_json::json!({ "entity": "contact" })).await.len() };
    assert_eq!(live().await, 2);
    let mut b = logged_in(&app).await;
    let page = b.get("/activity").await;
    let preview_link = link_after(&page.body, "aria-label=\"Undo the 2 changes of this call\"");
    assert!(preview_link.starts_with("/activity/undo?call=req_"), "{preview_link}");
    assert!(page.body.contains("aria-label=\"Undo this change\""));

    // The preview says what the undo writes, and writes nothing.
    let preview = b.get(&preview_link).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("Undo 2 changes"), "{}", preview.body);
    assert_eq!(preview.body.matches("<li class=\"entry\"").count(), 2, "{}", preview.body);
    assert!(preview.body.contains("deleted contact"), "{}", preview.body);
    assert_eq!(live().await, 2, "the preview wrote nothing");
    let call = preview_link.split("call=").nth(1).unwrap().to_owned();

    // A forged form changes nothing; the real one undoes the run.
    let forged = b.post("/activity/undo", &[("csrf", "nope"), ("call", &call)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(live().await, 2);
    let done = b.post("/activity/undo", &[("csrf", &preview.csrf()), ("call", &call)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.location().starts_with("/activity?call=req_"), "{}", done.location());
    assert_eq!(live().await, 0);
    let shown = b.get(done.location()).await;
    assert!(shown.body.contains("Undid 2 change(s)."), "{}", shown.body);
    assert!(shown.body.contains("an undo"), "the undo's entries say what they are: {}", shown.body);

    // The undo of the undo meets a conflict once someone changed a record since; the page
    // lists it and asks before skipping it.
    let undo_again = link_after(&shown.body, "Undo this call");
    app.ok("restore_records", serde_json::json!({ "entity": "contact", "ids": [hank] })).await;
    let preview = b.get(&undo_again).await;
    assert!(preview.body.contains("cannot be undone as they stand"), "{}", preview.body);
    assert!(preview.body.contains("name=\"force\""), "{}", preview.body);
    let csrf = preview.csrf();
    let call = undo_again.split("call=").nth(1).unwrap().to_owned();
    let refused = b.post("/activity/undo", &[("csrf", &csrf), ("call", &call)]).await;
    assert_eq!(refused.location(), undo_again, "back to the preview");
    assert!(b.get(refused.location()).await.body.contains("nothing was reverted"));
    assert_eq!(live().await, 1);
    let forced = b.post("/activity/undo", &[("csrf", &csrf), ("call", &call), ("force", "true")]).await;
    assert_eq!(forced.status, StatusCode::SEE_OTHER);
    assert_eq!(live().await, 2, "Iris came back; Hank, restored by hand since, stays as he is");

    // A member may not undo: no button, and the page and the form are refused.
    rapport::keys::users::create(&app.store, &app.cli(), "member@example.com", None, "member").await.unwrap();
    set_password(&app, "member@example.com").await;
    let mut m = Browser::new(&app.base);
    m.login("member@example.com", PASSWORD).await;
    let page = m.get("/activity").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/activity/undo"), "{}", page.body);
    assert_eq!(m.get(&undo_again).await.status, StatusCode::FORBIDDEN);
    let refused = m.post("/activity/undo", &[("csrf", &page.csrf()), ("call", &call)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(live().await, 2);
}

#[tokio::test]
async fn approvals_wait_on_their_page_and_are_decided_once_even_from_two_processes() {
    use rapport_tools::approvals::{ApprovalKind, ApprovalPolicy};
    use serde_json::json;

    let app = spawn_app().await;
    let (agent, agent_id) = app.key_of("owner@localhost", "agent", Some("admin"), &[]).await;
    let policy = ApprovalPolicy::new([ApprovalKind::Bulk, ApprovalKind::Delete], Some(2)).unwrap();
    rapport::keys::set_approval(&app.store, &app.cli(), &agent_id, policy).await.unwrap();
    let three = json!({ "contacts": [{ "first_name": "A" }, { "first_name": "B" }, { "first_name": "C" }] });
    let held = app.call_as(&agent, "create_contacts", three).await.unwrap();
    let id = held["approval_id"].as_str().unwrap().to_owned();

    // The page lists it, with its count in the navigation, what it would write, and the
    // two decisions.
    let mut b = logged_in(&app).await;
    let page = b.get("/approvals").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("class=\"nav-count\">1<"), "{}", page.body);
    assert!(page.body.contains("create_contacts: created 3 contacts"));
    assert!(page.body.contains(&format!("action=\"/approvals/{id}/approve\"")));
    assert!(page.body.contains(&format!("action=\"/approvals/{id}/deny\"")));
    // A forged decision is refused and decides nothing.
    let forged = b.post(&format!("/approvals/{id}/approve"), &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 0);

    // Two people press Approve at once, on two server processes: it runs once.
    let other = crate::helpers::start_other_process(&app.db_url, &[]);
    let csrf = page.csrf();
    let mut there = b.at(&other.base);
    let path = format!("/approvals/{id}/approve");
    let form = [("csrf", csrf.as_str())];
    let (here, away) = tokio::join!(b.post(&path, &form), there.post(&path, &form));
    assert_eq!((here.status, away.status), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER));
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 3, "the call ran exactly once");
    let flashes = [b.get("/approvals").await.body, there.get("/approvals").await.body];
    let ran = flashes.iter().filter(|f| f.contains("Approved: create_contacts ran as its key.")).count();
    // The loser is told, whether it read the approval after the winner's decision or lost
    // the conditional update to it.
    let told =
        flashes.iter().filter(|f| f.contains("is approved already") || f.contains("was decided meanwhile")).count();
    assert_eq!((ran, told), (1, 1), "one ran it, the other was told");
    assert!(!flashes[0].contains("nav-count"), "nothing waits any more");
    let (_, log) = app.api(&app.key, reqwest::Method::GET, "/changes?tool=create_contacts", None).await;
    assert_eq!(log["items"].as_array().unwrap().len(), 3, "{log}");

    // A member sees what waits and decides what their role covers, not a delete.
    let ids: Vec<String> = app.search_ids(json!({ "entity": "contact" })).await;
    let delete = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": [ids[0]] })).await.unwrap();
    let delete = delete["approval_id"].as_str().unwrap().to_owned();
    let update = json!({ "contacts": ids.iter().map(|i| json!({ "id": i, "title": "CEO" })).collect::<Vec<_>>() });
    let update = app.call_as(&agent, "update_contacts", update).await.unwrap();
    let update = update["approval_id"].as_str().unwrap().to_owned();
    app.person("member@example.com", "member").await;
    set_password(&app, "member@example.com").await;
    let mut m = Browser::new(&app.base);
    m.login("member@example.com", PASSWORD).await;
    let page = m.get("/approvals").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("class=\"nav-count\">2<"), "{}", page.body);
    assert!(!page.body.contains(&format!("/approvals/{delete}/approve")), "no Approve for a delete");
    assert!(page.body.contains("Your role does not cover this call"));
    assert!(page.body.contains(&format!("/approvals/{update}/approve")));
    let csrf = page.csrf();
    let refused = m.post(&format!("/approvals/{delete}/approve"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 3, "nothing deleted");
    // Denying takes a reason; with one, the agent reads it.
    let page = m.post(&format!("/approvals/{update}/deny"), &[("csrf", &csrf), ("reason", " ")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(m.get("/approvals").await.body.contains("a denial needs a reason"), "told a reason is needed");
    let got = app.call_as(&agent, "get_approval", json!({ "approval_id": update })).await.unwrap();
    assert_eq!(got["status"], "pending");
    m.post(&format!("/approvals/{update}/deny"), &[("csrf", &csrf), ("reason", "titles come from LinkedIn")]).await;
    let got = app.call_as(&agent, "get_approval", json!({ "approval_id": update })).await.unwrap();
    assert_eq!((got["status"].as_str(), got["reason"].as_str()), (Some("denied"), Some("titles come from LinkedIn")));
    assert_eq!(got["decided_by"], "member@example.com");
}
