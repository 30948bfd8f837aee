//! The key lifecycle over HTTP and the CLI (SPEC sections 2 and 3): each step, each
//! refusal, across processes, and what the audit log keeps.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, TestApp, holds_within, serve_args, spawn_app, spawn_app_with, start_other_process};

async fn create(app: &TestApp, body: Value) -> Value {
    let (status, v) = app.api(&app.key, Method::POST, "/keys", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lifecycle_step_over_http() {
    let app = spawn_app().await;
    let k = create(
        &app,
        json!({"name": "laptop", "role": "member", "expires_in_days": 30, "allowed_cidrs": ["127.0.0.0/8"]}),
    )
    .await;
    let (id, secret) = (k["id"].as_str().unwrap().to_owned(), k["key"].as_str().unwrap().to_owned());
    assert_eq!(app.mcp_status(&secret).await, StatusCode::OK);

    // Lists show the key without its secret, with its last use.
    let (_, list) = app.api(&app.key, Method::GET, "/keys", None).await;
    let listed = list["items"].as_array().unwrap().iter().find(|x| x["id"] == id.as_str()).unwrap().clone();
    assert!(listed.get("key").is_none());
    assert!(listed["last_used_at"].is_string(), "last use shown: {listed}");
    assert!(!list.to_string().contains(&secret));

    // Rename.
    let (s, v) = app.api(&app.key, Method::PATCH, &format!("/keys/{id}"), Some(json!({"name": "work laptop"}))).await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("work laptop")));

    // Disable, refused at once; enable, accepted again.
    let (s, _) = app.api(&app.key, Method::POST, &format!("/keys/{id}/disable"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.mcp_status(&secret).await, StatusCode::UNAUTHORIZED);
    let (s, _) = app.api(&app.key, Method::POST, &format!("/keys/{id}/enable"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.mcp_status(&secret).await, StatusCode::OK);

    // Rotate without grace: the old secret is refused at once; name, scopes, expiry, CIDRs kept.
    let (s, r) = app.api(&app.key, Method::POST, &format!("/keys/{id}/rotate"), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let rotated = r["key"].as_str().unwrap().to_owned();
    assert_ne!(rotated, secret);
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["name"], "work laptop");
    assert_eq!(r["expires_at"], k["expires_at"]);
    assert_eq!(r["allowed_cidrs"], k["allowed_cidrs"]);
    assert_eq!(app.mcp_status(&secret).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.mcp_status(&rotated).await, StatusCode::OK);

    // Rotate with grace: both work until the grace period ends.
    let (_, r2) = app.api(&app.key, Method::POST, &format!("/keys/{id}/rotate"), Some(json!({"grace_hours": 2}))).await;
    let newest = r2["key"].as_str().unwrap().to_owned();
    assert_eq!(app.mcp_status(&rotated).await, StatusCode::OK, "old secret within grace");
    assert_eq!(app.mcp_status(&newest).await, StatusCode::OK);
    let (_, shown) = app.api(&app.key, Method::GET, &format!("/keys/{id}"), None).await;
    assert_eq!(shown["rotated_from"], &rotated[..12]);

    // Revoke: refused for good, listed only with all=true, cannot be enabled.
    let (s, _) = app.api(&app.key, Method::POST, &format!("/keys/{id}/revoke"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.mcp_status(&newest).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.mcp_status(&rotated).await, StatusCode::UNAUTHORIZED, "grace ends with the key");
    let (s, v) = app.api(&app.key, Method::POST, &format!("/keys/{id}/enable"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("key_revoked")));
    let (_, list) = app.api(&app.key, Method::GET, "/keys", None).await;
    assert!(!list.to_string().contains(&id));
    let (_, list) = app.api(&app.key, Method::GET, "/keys?all=true", None).await;
    assert!(list.to_string().contains(&id));

    // Delete: a key used in the last 24 hours needs confirmation, and the refusal says when.
    let (s, v) = app.api(&app.key, Method::DELETE, &format!("/keys/{id}"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("confirmation_required")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("last used at"));
    let (s, body) = app.api(&app.key, Method::DELETE, &format!("/keys/{id}?confirm=true"), None).await;
    assert_eq!((s, body), (StatusCode::NO_CONTENT, json!("")), "204 with no body, as record deletes answer");
    let (s, _) = app.api(&app.key, Method::GET, &format!("/keys/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An unused key deletes without confirmation.
    let unused = create(&app, json!({"name": "spare"})).await;
    let (s, _) = app.api(&app.key, Method::DELETE, &format!("/keys/{}", unused["id"].as_str().unwrap()), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // The audit log has every step, newest first, and no secret or digest.
    let (s, audit) = app.api(&app.key, Method::GET, "/audit?limit=100", None).await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in [
        "key.create",
        "key.rename",
        "key.disable",
        "key.enable",
        "key.rotate",
        "key.revoke",
        "key.delete",
        "key.refused",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(actions[0], "key.delete");
    let text = audit.to_string();
    for secret in [&secret, &rotated, &newest, &app.key] {
        assert!(!text.contains(secret.as_str()) && !text.contains(&secret[12..]));
    }
    let digest = rapport::auth::key::PlainKey::parse(&newest).unwrap().digest();
    assert!(!text.contains(digest.as_str()));
    let first = &audit["items"][0];
    assert_eq!(first["actor"], "key");
    assert_eq!(first["ip"], "127.0.0.1");
    // Paged.
    let (_, page) = app.api(&app.key, Method::GET, "/audit?limit=2", None).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = app.api(&app.key, Method::GET, &format!("/audit?limit=2&cursor={cursor}"), None).await;
    assert_eq!(page2["items"][0]["id"], audit["items"][2]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_bound_what_keys_can_manage() {
    let app = spawn_app().await;
    let member = app.key_with(Some("member"), &[]).await;
    let (s, v) = app.api(&member, Method::GET, "/keys", None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")));
    let (s, _) = app.api(&member, Method::GET, "/audit", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // An admin cannot grant what it lacks.
    let admin = app.key_with(Some("admin"), &[]).await;
    let (s, v) = app.api(&admin, Method::POST, "/keys", Some(json!({"name": "x", "scopes": ["org:manage"]}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("insufficient_scope")), "{v}");
    let (s, _) = app.api(&admin, Method::POST, "/keys", Some(json!({"name": "x", "scopes": ["contacts:read"]}))).await;
    assert_eq!(s, StatusCode::CREATED);
    // Bad bodies answer in the API's error shape.
    let (s, v) = app.api(&app.key, Method::POST, "/keys", Some(json!({"name": "x", "colour": "red"}))).await;
    assert_eq!((s.as_u16() / 100, v["error"]["code"].as_str()), (4, Some("invalid_request")), "{v}");
    // The refusals are audited.
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 100).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "key.refused" && e.details["reason"] == "insufficient_scope"));

    // Another organization's keys are not found.
    let (_, other) = app.new_org("globex").await;
    let (_, mine) = app.api(&app.key, Method::GET, "/keys", None).await;
    let my_id = mine["items"][0]["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/keys/{my_id}")),
        (Method::POST, format!("/keys/{my_id}/disable")),
        (Method::POST, format!("/keys/{my_id}/revoke")),
        (Method::DELETE, format!("/keys/{my_id}?confirm=true")),
    ] {
        let (s, _) = app.api(&other, method, &path, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.mcp_status(&app.key).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_bound_their_keys() {
    let app = spawn_app().await;
    let (s, u) =
        app.api(&app.key, Method::POST, "/users", Some(json!({"email": "Sam@Example.com", "role": "admin"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert_eq!(u["email"], "sam@example.com");
    let sam = create(&app, json!({"name": "sam's", "role": "admin", "user": "sam@example.com"})).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(app.tool_names(&sam, "").await.contains(&"delete_records".to_owned()));
    let (s, _) = app.api(&app.key, Method::PATCH, "/users/sam@example.com", Some(json!({"role": "viewer"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!app.tool_names(&sam, "").await.contains(&"delete_records".to_owned()), "demotion applies at once");
    let (s, _) = app.api(&app.key, Method::PATCH, "/users/sam@example.com", Some(json!({"active": false}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.mcp_status(&sam).await, StatusCode::UNAUTHORIZED);
    // The last owner stays.
    let (s, v) = app.api(&app.key, Method::PATCH, "/users/owner@localhost", Some(json!({"role": "admin"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("last active owner"));
    let (_, list) = app.api(&app.key, Method::GET, "/users", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enabled_key_limit_counts_enables() {
    let app = spawn_app().await;
    // 10 allowed; the test owner key is one.
    let mut ids = Vec::new();
    for i in 0..9 {
        ids.push(create(&app, json!({"name": format!("k{i}")})).await["id"].as_str().unwrap().to_owned());
    }
    let (s, v) = app.api(&app.key, Method::POST, "/keys", Some(json!({"name": "eleventh"}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("key_limit_reached")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("disable or revoke"));
    app.api(&app.key, Method::POST, &format!("/keys/{}/disable", ids[0]), None).await;
    let spare = create(&app, json!({"name": "takes the place"})).await;
    let (s, v) = app.api(&app.key, Method::POST, &format!("/keys/{}/enable", ids[0]), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("key_limit_reached")));
    app.api(&app.key, Method::POST, &format!("/keys/{}/revoke", spare["id"].as_str().unwrap()), None).await;
    let (s, _) = app.api(&app.key, Method::POST, &format!("/keys/{}/enable", ids[0]), None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_key_and_per_address() {
    let mut args = serve_args();
    args.rate_limit = 5;
    let app = spawn_app_with(args).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.mcp_status(&app.key).await);
    }
    assert_eq!(statuses[..5], [StatusCode::OK; 5]);
    let res = app.rpc(&app.key, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    // A tool call over the limit is a tool result the model reads, with when to retry.
    let res = app
        .rpc(&app.key, json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "get_workspace", "arguments": {}}}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let retry = res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap();
    assert!(retry >= 1);
    let v: Value = res.json().await.unwrap();
    assert_eq!((v["id"].as_i64(), v["result"]["isError"].as_bool()), (Some(7), Some(true)), "{v}");
    assert_eq!(v["result"]["structuredContent"]["retry_after_s"], retry);
    assert!(v["result"]["content"][0]["text"].as_str().unwrap().contains(&format!("Retry this call in {retry} s")));
    // REST keeps the 429.
    let (status, e) = app.api(&app.key, Method::GET, "/contacts", None).await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));

    // Guessing keys from one address is throttled, and a forged X-Forwarded-For does not help.
    let app = spawn_app().await;
    for i in 0..40 {
        let guess = rapport::auth::key::PlainKey::generate();
        let res = app
            .client
            .post(app.mcp_url())
            .header("x-api-key", guess.expose())
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        if i < rapport::auth::limits::FAILED_AUTH_PER_MINUTE {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "guess {i}");
        } else {
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "guess {i}");
        }
    }
    // Only unknown keys are refused: a valid key from the same address (an office behind
    // one NAT) keeps working, and so does a malformed one's refusal say 429.
    assert_eq!(app.mcp_status(&app.key).await, StatusCode::OK, "a valid key is not locked out");
    let (status, e) = app.api(&app.key, Method::GET, "/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let unknown = rapport::auth::key::PlainKey::generate();
    assert_eq!(app.mcp_status(unknown.expose()).await, StatusCode::TOO_MANY_REQUESTS, "guessing stays cut off");
    assert_eq!(app.mcp_status("rpk_short").await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_is_kept_without_a_write_per_request() {
    let app = spawn_app().await;
    let before = app.store.list_keys(&app.default_org.id, false).await.unwrap();
    for _ in 0..20 {
        assert_eq!(app.mcp_status(&app.key).await, StatusCode::OK);
    }
    // Nothing written yet: uses wait in memory...
    let stored = app.store.list_keys(&app.default_org.id, false).await.unwrap();
    assert_eq!(stored, before, "no database write per request");
    // ...but the API shows them, time and address together.
    let (_, list) = app.api(&app.key, Method::GET, "/keys", None).await;
    assert!(list["items"][0]["last_used_at"].is_string());
    assert_eq!(list["items"][0]["last_used_ip"], "127.0.0.1", "{list}");
    // The periodic flush (every 30 s) writes one row per key.
    app.flush_usage().await;
    let stored = app.store.list_keys(&app.default_org.id, false).await.unwrap();
    let k = stored.iter().find(|k| k.last_used_at.is_some()).expect("last use recorded");
    assert_eq!(k.last_used_ip.as_deref(), Some("127.0.0.1"));
    assert!(rapport::time::now_ms() - k.last_used_at.unwrap() < 60_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_process_holds_in_another_within_a_second() {
    let a = spawn_app().await;
    let b = a.second_server().await;
    let k = create(&a, json!({"name": "shared"})).await;
    let (id, secret) = (k["id"].as_str().unwrap().to_owned(), k["key"].as_str().unwrap().to_owned());
    // Used through b first, so b holds it in its cache.
    assert_eq!(b.mcp_status(&secret).await, StatusCode::OK);
    let b_says = |key: String, want: StatusCode| {
        let b = &b;
        async move { holds_within(PROPAGATION, || async { b.mcp_status(&key).await == want }).await }
    };
    a.api(&a.key, Method::POST, &format!("/keys/{id}/disable"), None).await;
    assert_eq!(a.mcp_status(&secret).await, StatusCode::UNAUTHORIZED, "exact at once where it was made");
    assert!(b_says(secret.clone(), StatusCode::UNAUTHORIZED).await, "disabled through a, refused by b");
    a.api(&a.key, Method::POST, &format!("/keys/{id}/enable"), None).await;
    assert!(b_says(secret.clone(), StatusCode::OK).await, "enabled through a, accepted by b");
    let (_, r) = a.api(&a.key, Method::POST, &format!("/keys/{id}/rotate"), None).await;
    assert!(b_says(secret.clone(), StatusCode::UNAUTHORIZED).await, "rotated through a, old secret refused by b");
    let rotated = r["key"].as_str().unwrap().to_owned();
    assert!(b_says(rotated.clone(), StatusCode::OK).await);

    // Demoting the owner of a key narrows it in b; deactivating them refuses it.
    a.api(&a.key, Method::POST, "/users", Some(json!({"email": "sam@example.com", "role": "admin"}))).await;
    let body = json!({"name": "sam's", "user": "sam@example.com", "role": "admin"});
    let (_, k) = a.api(&a.key, Method::POST, "/keys", Some(body)).await;
    let sams = k["key"].as_str().expect("a key for sam").to_owned();
    assert_eq!(b.api(&sams, Method::GET, "/keys", None).await.0, StatusCode::OK, "an admin's key manages keys");
    a.api(&a.key, Method::PATCH, "/users/sam@example.com", Some(json!({"role": "viewer"}))).await;
    assert!(
        holds_within(PROPAGATION, || async {
            b.api(&sams, Method::GET, "/keys", None).await.0 == StatusCode::FORBIDDEN
        })
        .await,
        "demoted through a, narrowed in b"
    );
    a.api(&a.key, Method::PATCH, "/users/sam@example.com", Some(json!({"active": false}))).await;
    assert!(b_says(sams.clone(), StatusCode::UNAUTHORIZED).await, "deactivated through a, refused by b");

    a.api(&a.key, Method::POST, &format!("/keys/{id}/revoke"), None).await;
    assert!(b_says(rotated, StatusCode::UNAUTHORIZED).await, "revoked through a, refused by b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    use rapport::keys::{NewKeyRequest, create};
    // Without trusted proxies, X-Forwarded-For is ignored: the peer (127.0.0.1) is the client.
    let app = spawn_app().await;
    let req =
        NewKeyRequest { name: "office".into(), allowed_cidrs: vec!["203.0.113.0/24".into()], ..Default::default() };
    let office = create(app.store.as_ref(), &app.cli(), req, 100).await.unwrap().key;
    let send = |app: &TestApp, xff: &str| {
        app.client
            .post(app.mcp_url())
            .header("x-api-key", office.clone())
            .header("x-forwarded-for", xff.to_owned())
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
    };
    assert_eq!(send(&app, "203.0.113.7").await.unwrap().status(), StatusCode::FORBIDDEN);

    // Behind a trusted proxy (loopback here), the forwarded client address decides.
    let mut args = serve_args();
    args.trusted_proxies = vec!["127.0.0.0/8".into(), "::1/128".into()];
    let proxied = spawn_app_with(args).await;
    let req = NewKeyRequest {
        name: "office".into(),
        allowed_cidrs: vec!["203.0.113.0/24".into(), "2001:db8::/32".into()],
        ..Default::default()
    };
    let office = create(proxied.store.as_ref(), &proxied.cli(), req, 100).await.unwrap().key;
    let send = |xff: &str| {
        proxied
            .client
            .post(proxied.mcp_url())
            .header("x-api-key", office.clone())
            .header("x-forwarded-for", xff.to_owned())
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
    };
    assert_eq!(send("203.0.113.7").await.unwrap().status(), StatusCode::OK);
    assert_eq!(send("2001:db8::5").await.unwrap().status(), StatusCode::OK);
    assert_eq!(send("198.51.100.1").await.unwrap().status(), StatusCode::FORBIDDEN);
    // A client cannot smuggle an address in front of the one the proxy appended.
    assert_eq!(send("203.0.113.7, 198.51.100.1").await.unwrap().status(), StatusCode::FORBIDDEN);
    let audit = proxied.store.list_audit(&proxied.default_org.id, &Default::default(), None, 20).await.unwrap();
    assert!(audit.iter().any(|e| e.details["reason"] == "ip_not_allowed" && e.ip.as_deref() == Some("198.51.100.1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_agree_on_every_change() {
    let a = spawn_app().await;
    let b = start_other_process(&a.db_url, &[]);
    let status = |key: String| {
        let client = a.client.clone();
        let url = b.mcp_url.clone();
        async move {
            client
                .post(url)
                .header("x-api-key", key)
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let k = create(&a, json!({"name": "shared"})).await;
    let (id, secret) = (k["id"].as_str().unwrap().to_owned(), k["key"].as_str().unwrap().to_owned());
    assert_eq!(status(secret.clone()).await, StatusCode::OK);
    let b_says = |key: String, want: StatusCode| {
        let status = &status;
        async move { holds_within(PROPAGATION, || async { status(key.clone()).await == want }).await }
    };
    a.api(&a.key, Method::POST, &format!("/keys/{id}/disable"), None).await;
    assert!(b_says(secret.clone(), StatusCode::UNAUTHORIZED).await, "disabled through a, refused by process b");
    a.api(&a.key, Method::POST, &format!("/keys/{id}/enable"), None).await;
    assert!(b_says(secret.clone(), StatusCode::OK).await);
    let (_, r) = a.api(&a.key, Method::POST, &format!("/keys/{id}/rotate"), None).await;
    assert!(b_says(secret.clone(), StatusCode::UNAUTHORIZED).await, "rotated through a, old secret refused by b");
    let rotated = r["key"].as_str().unwrap().to_owned();
    assert!(b_says(rotated.clone(), StatusCode::OK).await);
    a.api(&a.key, Method::POST, &format!("/keys/{id}/revoke"), None).await;
    assert!(b_says(rotated, StatusCode::UNAUTHORIZED).await, "revoked through a, refused by b");
}
