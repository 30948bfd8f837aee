//! Webhooks (SPEC section 10) through the real server: endpoints managed over MCP and REST,
//! deliveries received by a real HTTP receiver on 127.0.0.1, the retry schedule and the
//! 5-day rule driven by back-dated rows, crashes, two processes, and the SSRF guard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::{KeyInit, Mac};
use rapport::config::ServeArgs;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{TestApp, holds_within, on_postgres, serve_args, spawn_app, spawn_app_with, start_other_process};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    content_type: String,
    body: Value,
    raw: String,
}

#[derive(Default)]
struct Inner {
    got: Vec<Received>,
    /// Answers to give, in order: status and `Retry-After`; 200 once they run out.
    answers: VecDeque<(u16, Option<&'static str>)>,
}

/// A webhook receiver on 127.0.0.1: records every request, answers as told, and can hold
/// requests until released (a slow receiver).
#[derive(Clone)]
struct Receiver {
    url: String,
    inner: Arc<Mutex<Inner>>,
    hold: watch::Sender<bool>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, raw: String) -> axum::response::Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let answer = {
        let mut inner = r.inner.lock().unwrap();
        inner.got.push(Received {
            id: h("webhook-id"),
            timestamp: h("webhook-timestamp").parse().unwrap_or(0),
            signature: h("webhook-signature"),
            content_type: h("content-type"),
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw: raw.clone(),
        });
        inner.answers.pop_front()
    };
    let mut held = r.hold.subscribe();
    while *held.borrow_and_update() {
        if held.changed().await.is_err() {
            break;
        }
    }
    let (status, retry_after) = answer.unwrap_or((200, None));
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(s) => (status, [("retry-after", s)], "not now").into_response(),
        None => (status, format!("answered {status}")).into_response(),
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let r = Receiver { url, inner: Arc::default(), hold: watch::channel(false).0 };
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    fn answer(&self, answers: &[(u16, Option<&'static str>)]) {
        self.inner.lock().unwrap().answers.extend(answers.iter().copied());
    }

    fn got(&self) -> Vec<Received> {
        self.inner.lock().unwrap().got.clone()
    }

    /// Waits until `n` requests came; all of them.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let ok = holds_within(Duration::from_secs(20), || async { self.got().len() >= n }).await;
        let got = self.got();
        assert!(ok, "expected {n} deliveries, got {}: {got:#?}", got.len());
        got
    }
}

/// An endpoint for `events` at the receiver; answers it with its secret.
async fn endpoint(app: &TestApp, r: &Receiver, events: &[&str]) -> Value {
    app.ok("create_webhook", json!({ "url": r.url, "events": events })).await
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    app.ok("list_webhook_deliveries", json!({ "id": id, "limit": 100 })).await["items"].as_array().unwrap().clone()
}

/// The endpoint's newest delivery once it has `n` attempts.
async fn after_attempts(app: &TestApp, id: &str, n: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = deliveries(app, id).await.into_iter().next().unwrap_or(Value::Null);
        if last["attempts"].as_array().is_some_and(|a| a.len() >= n) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery of {id} reached {n} attempts: {last:#}");
}

/// Makes every pending delivery due now, as if the wait had passed.
async fn due_now(app: &TestApp) {
    app.sql(
        "UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE state = 'pending' AND org_id = $1",
        app.default_org.id.as_str(),
    )
    .await;
}

fn ms(rfc3339: &Value) -> i64 {
    rapport::time::parse_instant(rfc3339.as_str().unwrap()).unwrap()
}

fn verify(secret: &str, r: &Received) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.raw).as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

async fn audit_actions(app: &TestApp) -> Vec<(String, Value)> {
    let (status, page) = app.api(&app.key, Method::GET, "/audit?limit=200", None).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap().to_owned(), e.clone())).collect()
}

#[tokio::test]
async fn endpoints_are_managed_with_the_secret_shown_once_and_every_change_audited() {
    let app = spawn_app().await;
    let hook = app
        .ok("create_webhook", json!({ "url": "https://hooks.example.com/rapport", "events": ["deal.*", "contact.created", "deal.*"], "description": "Slack" }))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("wh_"), "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let bytes = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    assert!((24..=64).contains(&bytes.len()));
    assert_eq!(hook["events"], json!(["deal.*", "contact.created"]), "repeats are dropped");
    assert_eq!(hook["enabled"], true);

    // Listed, over MCP and REST, never with a secret.
    let listed = app.ok("list_webhooks", json!({})).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret) && listed["items"][0].get("secret").is_none());
    let (status, one) = app.api(&app.key, Method::GET, &format!("/webhooks/{id}"), None).await;
    assert_eq!((status.as_u16(), one["description"].clone()), (200, json!("Slack")));
    assert!(one.get("secret").is_none());

    // Rotation answers a new secret once; the old one signs for 24 more hours.
    let (status, rotated) = app
        .api(
            &app.key,
            Method::PATCH,
            &format!("/webhooks/{id}"),
            Some(json!({ "rotate_secret": true, "enabled": false })),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let until = ms(&rotated["previous_secret_expires_at"]) - rapport::time::now_ms();
    assert!((23 * 3_600_000..=24 * 3_600_000).contains(&until), "{rotated}");
    assert_eq!(rotated["enabled"], false);
    let e = app.err("update_webhook", json!({ "id": id, "rotate_secret": true })).await;
    assert!(e.contains("rotated less than 24 hours ago"), "a second rotation would drop the secret receivers use: {e}");
    let again = app.ok("update_webhook", json!({ "id": id, "description": "" })).await;
    assert!(again.get("secret").is_none() && again["description"].is_null(), "{again}");

    // Bad input is refused by name, and nothing changes.
    for (args, says) in [
        (json!({ "url": "ftp://hooks.example.com/", "events": ["*"] }), "https"),
        (json!({ "url": "not a url", "events": ["*"] }), "not a URL"),
        (json!({ "url": "https://hooks.example.com/", "events": [] }), "at least one"),
        (json!({ "url": "https://hooks.example.com/", "events": ["deal.won"] }), "not an event pattern"),
        (json!({ "url": "https://hooks.example.com/", "events": ["invoice.created"] }), "not an event pattern"),
        (json!({ "url": "https://u:p@hooks.example.com/", "events": ["*"] }), "credentials"),
        (
            json!({ "url": "https://hooks.example.com/", "events": ["*"], "description": "x".repeat(501) }),
            "at most 500",
        ),
        (json!({ "url": "https://hooks.example.com/", "events": ["*"], "secret": "mine" }), "unknown field"),
    ] {
        let e = app.err("create_webhook", args.clone()).await;
        assert!(e.contains(says), "{args} → {e}");
    }
    let e = app.err("update_webhook", json!({ "id": id, "events": ["*.archived"] })).await;
    assert!(e.contains("not an event pattern"), "{e}");
    let e = app.err("update_webhook", json!({ "id": "wh_nope", "enabled": true })).await;
    assert!(e.contains("no webhook wh_nope"), "{e}");
    let e = app.err("list_webhook_deliveries", json!({ "id": id, "cursor": "page 2" })).await;
    assert!(e.contains("not a delivery id"), "{e}");
    let e = app.err("list_webhook_deliveries", json!({ "id": id, "limit": 0 })).await;
    assert!(e.contains("1 to 100"), "{e}");
    let e = app.err("resend_webhook_delivery", json!({ "delivery_id": "msg_0190d9c1e0a47c3e9f1b2a3c4d5e6f70" })).await;
    assert!(e.contains("no delivery"), "{e}");
    let (status, _) = app
        .api(&app.key, Method::POST, "/webhooks", Some(json!({ "url": "https://x.example.com/", "events": ["nope"] })))
        .await;
    assert_eq!(status, 422);
    let listed = app.ok("list_webhooks", json!({})).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "nothing was created");
    assert_eq!(listed["items"][0]["events"], json!(["deal.*", "contact.created"]), "nothing was changed");

    // Without webhooks:manage the tools are neither listed nor callable, and REST says 403.
    let member = app.key_with(None, &["contacts:read", "contacts:write"]).await;
    assert!(!app.tool_names(&member, "").await.iter().any(|t| t.contains("webhook")));
    let e = app.call_as(&member, "list_webhooks", json!({})).await.unwrap_err();
    assert!(e.contains("may not call list_webhooks"), "{e}");
    let (status, _) = app.api(&member, Method::GET, "/webhooks", None).await;
    assert_eq!(status, 403);

    let (status, _) = app.api(&app.key, Method::DELETE, &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = app.api(&app.key, Method::DELETE, &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, 404);

    let actions: Vec<String> = audit_actions(&app).await.into_iter().map(|(a, _)| a).collect();
    for a in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert!(actions.iter().any(|x| x == a), "{a} missing from {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "webhook.update").count(), 2, "{actions:?}");
    let audit = audit_actions(&app).await;
    assert!(!audit.iter().any(|(_, e)| e.to_string().contains(&secret)), "no secret in the audit log");
    assert!(!audit.iter().any(|(_, e)| e.to_string().contains("/rapport")), "no URL path (a hook's secret) either");
    assert!(audit.iter().any(|(_, e)| e.to_string().contains("https://hooks.example.com/…")));
}

#[tokio::test]
async fn deliveries_are_signed_with_the_record_and_the_changed_fields_and_a_no_op_sends_nothing() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    let hook = endpoint(&app, &r, &["contact.*", "deal.stage_changed"]).await;
    let secret = hook["secret"].as_str().unwrap();
    let id = app.create_contacts(json!([{ "first_name": "Ada", "title": "CEO" }])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok("update_contacts", json!({ "contacts": [{ "id": id, "title": "CTO" }] })).await;
    app.ok("update_contacts", json!({ "contacts": [{ "id": id, "title": "CTO" }] })).await;
    app.ok("update_contacts", json!({ "contacts": [{ "id": id, "title": "CFO" }] })).await;
    app.create_companies(json!([{ "name": "Acme" }])).await;
    let got = r.wait_for(3).await;
    assert!(!holds_within(Duration::from_secs(1), || async { r.got().len() > 3 }).await, "{:#?}", r.got());

    let types: Vec<&str> = got.iter().map(|g| g.body["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["contact.created", "contact.updated", "contact.updated"],
        "the no-op and the company send nothing"
    );
    let now = rapport::time::now_ms() / 1000;
    for g in &got {
        assert!(g.id.starts_with("msg_"), "{g:?}");
        assert!((now - 30..=now + 1).contains(&g.timestamp), "{g:?}");
        assert_eq!(g.content_type, "application/json");
        assert!(g.signature.starts_with("v1,") && verify(secret, g), "{g:?}");
        assert_eq!(g.body["data"]["id"], id.as_str());
        assert_eq!(g.body["data"]["entity"], "contact");
        assert!(g.body["timestamp"].as_str().is_some_and(|t| rapport::time::parse_instant(t).is_some()));
        assert_eq!(g.body["data"]["actor"]["type"], "key", "{}", g.body);
    }
    assert_eq!(got[0].body["data"]["record"]["first_name"], "Ada");
    assert!(got[0].body["data"].get("changes").is_none(), "{}", got[0].body);
    assert_eq!(got[1].body["data"]["changes"]["title"], json!({ "before": "CEO", "after": "CTO" }), "{}", got[1].body);
    assert_eq!(got[2].body["data"]["changes"]["title"], json!({ "before": "CTO", "after": "CFO" }));
    assert_ne!(got[0].id, got[1].id);

    // A stage move sends deal.updated and deal.stage_changed; only the second is subscribed.
    let deal = app.ok("create_deals", json!({ "deals": [{ "name": "Big one" }] })).await["items"][0].clone();
    app.ok("update_deals", json!({ "deals": [{ "id": deal["id"], "stage": "qualified" }] })).await;
    let got = r.wait_for(4).await;
    assert_eq!(got[3].body["type"], "deal.stage_changed", "{}", got[3].body);
    assert_eq!(got[3].body["data"]["changes"]["stage"]["after"], "qualified", "{}", got[3].body);

    // Recorded right after the receiver answers.
    let hid = hook["id"].as_str().unwrap();
    let all_delivered = || async { deliveries(&app, hid).await.iter().all(|d| d["state"] == "delivered") };
    assert!(holds_within(Duration::from_secs(5), all_delivered).await);
    let listed = deliveries(&app, hid).await;
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|d| d["attempts"][0]["status"] == 200), "{listed:#?}");
    assert!(listed[0]["attempts"][0]["response"].as_str().unwrap().contains("answered 200"));
}

#[tokio::test]
async fn failures_follow_the_retry_schedule_with_the_same_id_and_a_fresh_signature() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    r.answer(&[(500, None); 8]);
    let hook = endpoint(&app, &r, &["*"]).await;
    let hid = hook["id"].as_str().unwrap().to_owned();
    app.create_contacts(json!([{ "first_name": "Ada" }])).await;

    // About 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then the delivery fails.
    let schedule_s = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
    for (n, wait) in schedule_s.iter().enumerate() {
        let d = after_attempts(&app, &hid, n + 1).await;
        assert_eq!(d["state"], "pending", "{d:#}");
        let gap = ms(&d["next_attempt_at"]) - ms(&d["attempts"][0]["at"]);
        assert!((gap - wait * 1000).abs() < 2_000, "attempt {}: waits {gap} ms, expected {wait} s", n + 1);
        assert_eq!(d["attempts"][0]["status"], 500);
        due_now(&app).await;
    }
    let d = after_attempts(&app, &hid, 8).await;
    assert_eq!(d["state"], "failed", "{d:#}");
    assert!(d["next_attempt_at"].is_null());
    let got = r.got();
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|g| g.id == got[0].id && verify(hook["secret"].as_str().unwrap(), g)), "one webhook-id");
    assert!(got.windows(2).all(|w| w[1].timestamp >= w[0].timestamp), "each attempt signed when sent");
    assert!(got.iter().all(|g| g.raw == got[0].raw), "the same body every time");
    // The endpoint is still on (failing for minutes, not 5 days); a resend sends it again.
    let resent = app.ok("resend_webhook_delivery", json!({ "delivery_id": got[0].id })).await;
    assert_eq!((resent["id"].as_str().unwrap(), resent["state"].as_str().unwrap()), (got[0].id.as_str(), "pending"));
    let got = r.wait_for(9).await;
    assert_eq!(got[8].id, got[0].id, "the same webhook-id");
    assert!(after_attempts(&app, &hid, 9).await["state"] == "delivered");
    assert!(audit_actions(&app).await.iter().any(|(a, _)| a == "webhook.resend"));
}

#[tokio::test]
async fn retry_after_is_honoured_and_each_record_is_delivered_in_order() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    r.answer(&[(503, Some("3600"))]);
    let hook = endpoint(&app, &r, &["contact.*"]).await;
    let hid = hook["id"].as_str().unwrap().to_owned();
    let id = app.create_contacts(json!([{ "first_name": "Ada" }])).await[0]["id"].as_str().unwrap().to_owned();
    let d = after_attempts(&app, &hid, 1).await;
    let gap = ms(&d["next_attempt_at"]) - ms(&d["attempts"][0]["at"]);
    assert!((3_598_000..=3_602_000).contains(&gap), "Retry-After: 3600 → {gap} ms: {d:#}");
    // Later changes of the record wait behind the one that failed.
    app.ok("update_contacts", json!({ "contacts": [{ "id": id, "title": "CTO" }] })).await;
    app.ok("update_contacts", json!({ "contacts": [{ "id": id, "title": "CEO" }] })).await;
    let other = app.create_contacts(json!([{ "first_name": "Bob" }])).await[0]["id"].as_str().unwrap().to_owned();
    let got = r.wait_for(2).await;
    assert_eq!(got[1].body["data"]["id"], other.as_str(), "another record is not held up");
    assert!(!holds_within(Duration::from_secs(1), || async { r.got().len() > 2 }).await, "{:#?}", r.got());
    due_now(&app).await;
    let got = r.wait_for(5).await;
    let order: Vec<String> =
        got[2..].iter().map(|g| format!("{} {}", g.body["type"], g.body["data"]["record"]["title"])).collect();
    assert_eq!(order, ["\"contact.created\" null", "\"contact.updated\" \"CTO\"", "\"contact.updated\" \"CEO\""]);
}

#[tokio::test]
async fn gone_turns_the_endpoint_off_and_five_days_of_failure_too_both_audited() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    r.answer(&[(410, None)]);
    let hook = endpoint(&app, &r, &["*"]).await;
    let hid = hook["id"].as_str().unwrap().to_owned();
    app.create_contacts(json!([{ "first_name": "Ada" }])).await;
    let d = after_attempts(&app, &hid, 1).await;
    assert_eq!(d["state"], "failed");
    // The endpoint is turned off right after the attempt is recorded.
    let off = || async { app.ok("list_webhooks", json!({})).await["items"][0]["enabled"] == false };
    assert!(holds_within(Duration::from_secs(5), off).await);
    let listed = app.ok("list_webhooks", json!({})).await["items"][0].clone();
    assert!(listed["disabled_reason"].as_str().unwrap().contains("410"), "{listed}");
    // Off: new changes queue nothing, and a resend is refused until it is turned on.
    app.create_contacts(json!([{ "first_name": "Bob" }])).await;
    assert_eq!(deliveries(&app, &hid).await.len(), 1);
    let e = app.err("resend_webhook_delivery", json!({ "delivery_id": d["id"] })).await;
    assert!(e.contains("turned off"), "{e}");
    let on = app.ok("update_webhook", json!({ "id": hid, "enabled": true })).await;
    assert!(on["disabled_reason"].is_null() && on["failing_since"].is_null(), "{on}");
    app.ok("resend_webhook_delivery", json!({ "delivery_id": d["id"] })).await;
    assert_eq!(r.wait_for(2).await[1].id, d["id"].as_str().unwrap());

    // Failing for 5 days: the next failure turns it off.
    r.answer(&[(500, None), (500, None)]);
    app.create_contacts(json!([{ "first_name": "Cy" }])).await;
    let d = after_attempts(&app, &hid, 1).await;
    let since = app.ok("list_webhooks", json!({})).await["items"][0]["failing_since"].clone();
    assert_eq!(ms(&since), ms(&d["attempts"][0]["at"]), "the failure run starts");
    app.sql("UPDATE webhook_endpoints SET failing_since = failing_since - 432000000 WHERE id = $1", &hid).await;
    due_now(&app).await;
    after_attempts(&app, &hid, 2).await;
    assert!(holds_within(Duration::from_secs(5), off).await);
    let listed = app.ok("list_webhooks", json!({})).await["items"][0].clone();
    assert!(listed["disabled_reason"].as_str().unwrap().contains("5 days"), "{listed}");

    let disabled: Vec<Value> =
        audit_actions(&app).await.into_iter().filter(|(a, _)| a == "webhook.disabled").map(|(_, e)| e).collect();
    assert_eq!(disabled.len(), 2, "{disabled:#?}");
    assert!(
        disabled.iter().any(|e| e.to_string().contains("410"))
            && disabled.iter().any(|e| e.to_string().contains("5 days"))
    );
}

#[tokio::test]
async fn a_slow_receiver_does_not_slow_the_api() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    r.hold.send_replace(true);
    endpoint(&app, &r, &["*"]).await;
    app.create_contacts(json!([{ "first_name": "First" }])).await;
    r.wait_for(1).await;
    // The receiver holds that request; writes and reads go on meanwhile.
    for i in 0..20 {
        app.create_contacts(json!([{ "first_name": format!("Next {i}") }])).await;
    }
    assert_eq!(app.search_ids(json!({ "entity": "contact", "limit": 100 })).await.len(), 21);
    r.hold.send_replace(false);
    r.wait_for(21).await;
}

// Several threads: starting a process blocks this one, and the in-process server must go on
// meanwhile (it may hold SQLite's write lock the child waits for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_pending_delivery() {
    let app = spawn_app_with(ServeArgs { webhook_sender: false, ..serve_args() }).await;
    let r = Receiver::start().await;
    r.hold.send_replace(true);
    let hook = endpoint(&app, &r, &["contact.created"]).await;
    let env = [("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true")];
    let first = start_other_process(&app.db_url, &env);
    let remote = app.at(&first.base);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            remote.create_contacts(json!([{ "first_name": format!("C{i}") }])).await[0]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The first process has sent what it could; the receiver holds it, unanswered.
    r.wait_for(5).await;
    drop(first); // SIGKILL: mid-request, with every delivery leased and none answered.
    r.hold.send_replace(false);
    let listed = deliveries(&app, hook["id"].as_str().unwrap()).await;
    assert!(listed.iter().all(|d| d["state"] == "pending"), "{listed:#?}");
    // Its leases run out (back-dated here instead of waited for), and a new process sends.
    app.sql("UPDATE webhook_deliveries SET lease_until = 0 WHERE org_id = $1", app.default_org.id.as_str()).await;
    let _second = start_other_process(&app.db_url, &env);
    let got = r.wait_for(10).await;
    let mut delivered: Vec<String> =
        got[5..].iter().map(|g| g.body["data"]["id"].as_str().unwrap().to_owned()).collect();
    delivered.sort();
    ids.sort();
    assert_eq!(delivered, ids, "every one went out after the restart");
    let ok = holds_within(Duration::from_secs(10), || async {
        deliveries(&app, hook["id"].as_str().unwrap()).await.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    assert!(ok);
}

/// Two `serve` processes (on PostgreSQL when the tests run there) drain one outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_send_each_delivery_once() {
    let app = spawn_app_with(ServeArgs { webhook_sender: false, ..serve_args() }).await;
    let r = Receiver::start().await;
    endpoint(&app, &r, &["*"]).await;
    let env = [("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true")];
    let (p1, p2) = (start_other_process(&app.db_url, &env), start_other_process(&app.db_url, &env));
    let (first, second) = (app.at(&p1.base), app.at(&p2.base));
    let n = 40;
    let writes = (0..n).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        app.call("create_contacts", json!({ "contacts": [{ "first_name": format!("C{i}") }] }))
    });
    for w in futures::future::join_all(writes).await {
        w.unwrap();
    }
    r.wait_for(n).await;
    assert!(!holds_within(Duration::from_secs(2), || async { r.got().len() > n }).await);
    let mut ids: Vec<String> = r.got().into_iter().map(|g| g.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "each delivery exactly once{}", if on_postgres() { " (PostgreSQL)" } else { "" });
}

#[tokio::test]
async fn metrics_count_deliveries_by_outcome() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    r.answer(&[(500, None)]);
    let hook = endpoint(&app, &r, &["*"]).await;
    app.create_contacts(json!([{ "first_name": "Ada" }])).await;
    after_attempts(&app, hook["id"].as_str().unwrap(), 1).await;
    due_now(&app).await;
    r.wait_for(2).await;
    after_attempts(&app, hook["id"].as_str().unwrap(), 2).await;
    // Counted right after the attempt is recorded.
    let metrics =
        || async { app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap() };
    let both = || async {
        let text = metrics().await;
        text.contains("rapport_webhook_deliveries_total{outcome=\"retrying\"} 1")
            && text.contains("rapport_webhook_deliveries_total{outcome=\"delivered\"} 1")
    };
    assert!(holds_within(Duration::from_secs(5), both).await, "{}", metrics().await);
}

/// With private targets not allowed, the guard refuses them when saved, by address or by
/// what the name resolves to, and again at each delivery.
#[tokio::test]
async fn the_ssrf_guard_refuses_private_targets_when_saved_and_when_sent() {
    let app = spawn_app_with(ServeArgs { webhook_allow_private: false, ..serve_args() }).await;
    for url in [
        "http://hooks.example.com/",
        "https://127.0.0.1/",
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://localhost:8443/",
        "https://api.localhost/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:a00:1]/",
        "https://10.0.0.5/",
        "https://172.16.4.4/",
        "https://192.168.1.1/",
        "https://100.64.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/",
        "https://[fd00::1]/",
        "https://metadata.google.internal/",
        "https://0.0.0.0/",
    ] {
        let e = app.err("create_webhook", json!({ "url": url, "events": ["*"] })).await;
        assert!(e.contains("`url`"), "{url} → {e}");
    }
    // A name that resolves to this machine (its host name, when it does).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_owned();
    let resolves_private = match tokio::net::lookup_host((host.as_str(), 443)).await {
        Ok(addrs) => addrs.into_iter().any(|a| rapport::webhooks::guard::refused(a.ip()).is_some()),
        Err(_) => false,
    };
    if resolves_private {
        let e = app.err("create_webhook", json!({ "url": format!("https://{host}/"), "events": ["*"] })).await;
        assert!(e.contains("resolves to"), "{host} → {e}");
    }
    assert!(app.ok("list_webhooks", json!({})).await["items"].as_array().unwrap().is_empty());

    // An endpoint saved while private targets were allowed is refused at delivery.
    let r = Receiver::start().await;
    let allowed = app.second_server_with(ServeArgs { webhook_sender: false, ..serve_args() }).await;
    let hook = endpoint(&allowed, &r, &["*"]).await;
    app.create_contacts(json!([{ "first_name": "Ada" }])).await;
    let d = after_attempts(&app, hook["id"].as_str().unwrap(), 1).await;
    assert!(d["attempts"][0]["status"].is_null(), "{d:#}");
    assert!(d["attempts"][0]["error"].as_str().unwrap().contains("not sent"), "{d:#}");
    assert!(r.got().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn ended_deliveries_are_forgotten_after_30_days_and_pending_ones_kept() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    r.answer(&[(200, None), (500, None)]);
    let hook = endpoint(&app, &r, &["contact.created"]).await;
    let hid = hook["id"].as_str().unwrap().to_owned();
    app.create_contacts(json!([{ "first_name": "Old" }])).await;
    after_attempts(&app, &hid, 1).await;
    app.create_contacts(json!([{ "first_name": "Pending" }])).await;
    r.wait_for(2).await;
    let ok = holds_within(Duration::from_secs(10), || async {
        deliveries(&app, &hid).await.iter().all(|d| !d["attempts"].as_array().unwrap().is_empty())
    })
    .await;
    assert!(ok);
    // Both 31 days old: the delivered one goes, the one still pending stays.
    app.sql(
        "UPDATE webhook_deliveries SET finished_at = finished_at - 2678400000, created_at = created_at - 2678400000 WHERE org_id = $1",
        app.default_org.id.as_str(),
    )
    .await;
    app.sql(
        "UPDATE webhook_events SET created_at = created_at - 2678400000 WHERE org_id = $1",
        app.default_org.id.as_str(),
    )
    .await;
    app.state.housekeeping().await;
    let left = deliveries(&app, &hid).await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!((left[0]["state"].as_str(), left[0]["attempts"].as_array().unwrap().len()), (Some("pending"), 1));
    // The delivered one's event body went with it; the pending one's stays, to be sent.
    let events = app.row_counts().await.into_iter().find(|(t, _)| *t == "webhook_events").unwrap().1;
    assert_eq!(events, 1);
}

/// Ten endpoints on `*` receive one write's event from a single stored body (issue 26):
/// the write queues one `webhook_events` row naming them and no delivery; the sender fans
/// it out into ten deliveries, ten identical bodies each signed for its endpoint. A delivery
/// queued by an earlier release, with the body on its own row, is still sent as it was.
#[tokio::test]
async fn an_event_is_stored_once_however_many_endpoints_receive_it() {
    let app = spawn_app_with(ServeArgs { webhook_sender: false, ..serve_args() }).await;
    let r = Receiver::start().await;
    for _ in 0..10 {
        endpoint(&app, &r, &["*"]).await;
    }
    let count = |counts: &[(&str, i64)], t: &str| counts.iter().find(|(n, _)| *n == t).unwrap().1;
    let before = app.row_counts().await;
    app.create_contacts(json!([{ "first_name": "Once" }])).await;
    let after = app.row_counts().await;
    assert_eq!(count(&after, "webhook_events") - count(&before, "webhook_events"), 1);
    assert_eq!(count(&after, "webhook_deliveries"), count(&before, "webhook_deliveries"), "none at write time");
    // Listed already, pending, under the id it will be sent with.
    let first_hook = app.ok("list_webhooks", json!({})).await["items"][0]["id"].as_str().unwrap().to_owned();
    let queued = deliveries(&app, &first_hook).await;
    assert_eq!(queued.len(), 1, "{queued:#?}");
    assert_eq!((queued[0]["state"].as_str(), queued[0]["type"].as_str()), (Some("pending"), Some("contact.created")));
    let _sender = app.second_server_with(serve_args()).await;
    let got = r.wait_for(10).await;
    let fanned = app.row_counts().await;
    assert_eq!(count(&fanned, "webhook_deliveries") - count(&before, "webhook_deliveries"), 10);
    assert_eq!(count(&fanned, "webhook_events"), count(&after, "webhook_events"));
    assert!(got.iter().all(|g| g.raw == got[0].raw && g.body["data"]["record"]["first_name"] == "Once"), "{got:#?}");
    let signatures: std::collections::HashSet<&str> = got.iter().map(|g| g.signature.as_str()).collect();
    assert_eq!(signatures.len(), 10, "each signed with its endpoint's secret");
    let ids: std::collections::HashSet<&str> = got.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids.len(), 10);
    assert!(ids.contains(queued[0]["id"].as_str().unwrap()), "sent under the id listed: {ids:?}");
    let sent = deliveries(&app, &first_hook).await;
    assert_eq!((sent.len(), &sent[0]["id"]), (1, &queued[0]["id"]), "{sent:#?}");
    // As an earlier release queued it: the body on the delivery, no event.
    app.sql(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, finished_at = NULL, \
         event_id = NULL, payload = '{\"type\":\"contact.created\",\"data\":{\"first_name\":\"Earlier\"}}' \
         WHERE id = (SELECT MIN(id) FROM webhook_deliveries WHERE org_id = $1)",
        app.default_org.id.as_str(),
    )
    .await;
    let got = r.wait_for(11).await;
    assert_eq!(got[10].body["data"]["first_name"], "Earlier");
}

/// A write reads its organization's endpoints from a cache (issue 26); an endpoint made,
/// turned off or deleted through another process changes what this one's writes announce
/// (on PostgreSQL through the key-change notifications, on SQLite through `data_version`).
#[tokio::test]
async fn an_endpoint_changed_through_another_process_is_seen_by_this_ones_writes() {
    let app = spawn_app().await;
    let other = app.second_server_with(ServeArgs { webhook_sender: false, ..serve_args() }).await;
    let r = Receiver::start().await;
    // This process has read the organization's endpoints: none.
    app.create_contacts(json!([{ "first_name": "Before" }])).await;
    let hook = endpoint(&other, &r, &["contact.created"]).await;
    let hid = hook["id"].as_str().unwrap().to_owned();
    // Within the cross-process second, this process's writes announce to it.
    let seen = holds_within(Duration::from_secs(3), || async {
        app.create_contacts(json!([{ "first_name": "After" }])).await;
        !deliveries(&app, &hid).await.is_empty()
    })
    .await;
    assert!(seen, "a write of this process reached the endpoint made through the other");
    let got = r.wait_for(1).await;
    assert_eq!(got[0].body["data"]["record"]["first_name"], "After");
    // Turned off there: after the second, this process's writes queue nothing for it.
    other.ok("update_webhook", json!({ "id": hid, "enabled": false })).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = deliveries(&app, &hid).await.len();
    app.create_contacts(json!([{ "first_name": "Off" }])).await;
    assert_eq!(deliveries(&app, &hid).await.len(), before, "nothing queued for an endpoint turned off");
}

#[tokio::test]
async fn a_link_announces_both_records_and_a_merge_the_kept_and_the_merged() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    endpoint(&app, &r, &["*.linked", "*.merged", "*.deleted"]).await;
    let c = app.create_contacts(json!([{ "first_name": "Ada" }, { "first_name": "Ada L." }])).await;
    let (keep, other) = (c[0]["id"].as_str().unwrap(), c[1]["id"].as_str().unwrap());
    let co = app.create_companies(json!([{ "name": "Acme" }])).await[0]["id"].as_str().unwrap().to_owned();
    app.ok(
        "link_records",
        json!({ "links": [{ "from": { "entity": "contact", "id": keep }, "to": { "entity": "company", "id": co } }] }),
    )
    .await;
    app.ok("merge_records", json!({ "entity": "contact", "keep_id": keep, "merge_ids": [other] })).await;
    let got = r.wait_for(4).await;
    let mut seen: Vec<String> = got
        .iter()
        .map(|g| format!("{} {}", g.body["type"].as_str().unwrap(), g.body["data"]["id"].as_str().unwrap()))
        .collect();
    seen.sort();
    let mut want = vec![
        format!("company.linked {co}"),
        format!("contact.linked {keep}"),
        format!("contact.merged {keep}"),
        format!("contact.deleted {other}"),
    ];
    want.sort();
    assert_eq!(seen, want);
    assert!(!holds_within(Duration::from_secs(1), || async { r.got().len() > 4 }).await, "{:#?}", r.got());
}

#[tokio::test]
async fn an_endpoint_deleted_mid_send_costs_no_other_delivery_and_a_send_in_flight_is_not_resent() {
    let app = spawn_app().await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    a.hold.send_replace(true);
    b.hold.send_replace(true);
    let doomed = endpoint(&app, &a, &["*"]).await;
    let kept = endpoint(&app, &b, &["*"]).await;
    app.create_contacts(json!([{ "first_name": "Ada" }])).await;
    a.wait_for(1).await;
    b.wait_for(1).await;
    // Both requests are in flight: a resend now is refused, not sent twice at once.
    let d = deliveries(&app, kept["id"].as_str().unwrap()).await[0].clone();
    let e = app.err("resend_webhook_delivery", json!({ "delivery_id": d["id"] })).await;
    assert!(e.contains("being sent right now"), "{e}");
    app.ok("delete_webhook", json!({ "id": doomed["id"] })).await;
    a.hold.send_replace(false);
    b.hold.send_replace(false);
    let d = after_attempts(&app, kept["id"].as_str().unwrap(), 1).await;
    assert_eq!(d["state"], "delivered", "{d:#}");
    assert!(!holds_within(Duration::from_secs(1), || async { b.got().len() > 1 }).await, "sent once");
}

#[tokio::test]
async fn an_endpoint_that_hangs_holds_its_share_and_the_others_go_on() {
    let app = spawn_app().await;
    let (slow, fast) = (Receiver::start().await, Receiver::start().await);
    slow.hold.send_replace(true);
    endpoint(&app, &slow, &["contact.created"]).await;
    endpoint(&app, &fast, &["contact.created"]).await;
    let items: Vec<Value> = (0..90).map(|i| json!({ "first_name": format!("C{i}") })).collect();
    app.create_contacts(Value::Array(items)).await;
    // All 90 reach the fast endpoint while the slow one holds 64 requests, no more.
    fast.wait_for(90).await;
    assert_eq!(slow.got().len(), 64, "one endpoint's share of the requests in flight");
    slow.hold.send_replace(false);
    slow.wait_for(90).await;
}

#[tokio::test]
async fn activities_are_announced_as_activity_events() {
    let app = spawn_app().await;
    let r = Receiver::start().await;
    endpoint(&app, &r, &["activity.*"]).await;
    let ada = app.create_contacts(json!([{ "first_name": "Ada" }])).await[0]["id"].as_str().unwrap().to_owned();
    let logged = app
        .ok(
            "log_activities",
            json!({ "activities": [{ "kind": "call", "outcome": "voicemail", "record": { "entity": "contact", "id": ada } }] }),
        )
        .await;
    let id = logged["items"][0]["id"].as_str().unwrap().to_owned();
    app.ok("update_activities", json!({ "activities": [{ "id": id, "outcome": "connected" }] })).await;
    let got = r.wait_for(2).await;
    let seen: Vec<String> = got
        .iter()
        .map(|g| format!("{} {}", g.body["type"].as_str().unwrap(), g.body["data"]["id"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [format!("activity.created {id}"), format!("activity.updated {id}")]);
    assert_eq!(got[1].body["data"]["record"]["outcome"], "connected", "{:?}", got[1].body);
    // The contact's own events were not asked for.
    assert!(!holds_within(Duration::from_secs(1), || async { r.got().len() > 2 }).await, "{:#?}", r.got());
}
